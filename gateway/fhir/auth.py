"""Who is calling the FHIR face. First-party apps use the native session token or the master key;
SMART bearer tokens are for everyone else (gateway/smart)."""
from __future__ import annotations

import hmac

from flask import current_app, request

from gateway.access import ANONYMOUS, MASTER, Principal
from gateway.errors import Unauthenticated
from gateway.extensions import db
from gateway.services.users import UserService


def current_principal() -> Principal:
    master = request.headers.get("X-Parse-Master-Key")
    if master:
        if hmac.compare_digest(master.encode(), str(current_app.config["MASTER_KEY"]).encode()):
            return MASTER
        raise Unauthenticated("The master key is not valid.")
    token = request.headers.get("X-Parse-Session-Token")
    if token:
        users = UserService(db.session)
        _, user = users.session_for_token(token)
        return users.principal(user)
    return ANONYMOUS


def require(p: Principal) -> Principal:
    if not p.authenticated:
        raise Unauthenticated("Authentication is required: a SMART bearer token, or a session token.")
    return p
