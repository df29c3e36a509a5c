"""Who is calling the FHIR face. SMART bearer tokens (gateway/smart) for apps and back-end systems;
first-party apps may also use the native session token or the master key.

A bearer token narrows, never widens (DESIGN.md): the Principal is the token's user (or, for a Backend
Services token, the client's provider) with a SmartContext carrying the granted scopes and patient, which
gateway/access.py intersects with everything. `scoped` adds the 403 of SMART App Launch 2.2: an
interaction the token's scopes do not name at all is forbidden, not merely empty."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import wraps

from flask import current_app, g, request

from gateway.caller_cache import Caller, remembered
from gateway.db import utcnow
from gateway.keys import is_master_key
from gateway.access import ANONYMOUS, MASTER, Principal, SmartContext, principal_for_user, smart_permits
from gateway.errors import Forbidden, Unauthenticated
from gateway.extensions import db
from gateway.models import User
from gateway.models.oauth import OAuthClient
from gateway.ops.wsgi import note_caller
from gateway.scopes import parse as parse_scopes
from gateway.services.users import UserService, hash_token


def current_principal() -> Principal:
    """The caller of this request (computed once per request)."""
    if "fhir_principal" not in g:
        g.fhir_principal = _principal()
        note_caller(request.environ, g.fhir_principal)  # for the access log (gateway/ops/wsgi.py)
    return g.fhir_principal


def _principal() -> Principal:
    return principal_from(request.headers)


def principal_from(headers) -> Principal:
    """The caller named by these request headers (needs an app context)."""
    master = headers.get("X-Parse-Master-Key")
    if master:
        if is_master_key(master, current_app.config):
            return MASTER
        raise Unauthenticated("The master key is not valid.")
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return bearer_principal(credentials.strip())
    token = headers.get("X-Parse-Session-Token")
    if token:
        return UserService(db.session).principal_for_token(token, current_app.extensions.get("phr_callers")).principal
    return ANONYMOUS


def bearer_principal(value: str) -> Principal:
    """The Principal of a live SMART access token; 401 when it is unknown, expired, revoked (or its grant
    is), or was issued for another FHIR base. Remembered like session tokens (gateway/caller_cache.py)."""
    from gateway.fhir.http import base_url

    caller = remembered(current_app.extensions.get("phr_callers"), ("bearer", hash_token(value)), utcnow(),
                        lambda: _bearer_caller(value))
    if caller.audience != base_url():
        raise Unauthenticated("The access token was issued for another server.")
    return caller.principal


def _bearer_caller(value: str) -> Caller:
    from gateway.smart.tokens import live_access_token

    found = live_access_token(db.session, value) if value else None
    if found is None:
        raise Unauthenticated("The access token is missing, unknown, expired or revoked.")
    token, grant = found
    smart = SmartContext(scopes=parse_scopes(token.scope), patient_id=grant.patient_id, client_id=grant.client_id,
                         grant_id=grant.grant_id)
    tags = {f"grant:{grant.grant_id}", f"client:{grant.client_id}"}
    if grant.user_id is not None:
        user = db.session.get(User, grant.user_id)
        if user is None:
            raise Unauthenticated("The access token's user no longer exists.")
        principal = dataclasses.replace(principal_for_user(db.session, user, grant.client_id), smart=smart)
        tags.add(f"user:{user.object_id}")
    else:
        client = db.session.get(OAuthClient, grant.client_id)
        provider = client.provider_id if client is not None else None
        principal = Principal(client_id=grant.client_id, provider_ids=frozenset({provider} if provider else ()),
                              smart=smart)
        if provider:
            tags.add(f"provider:{provider}")
    return Caller(principal=principal, user_id=grant.user_id, expires_at=token.expires_at,
                  audience=grant.audience, tags=frozenset(tags))


def require(p: Principal) -> Principal:
    if not p.authenticated and p.smart is None:
        raise Unauthenticated("Authentication is required: a SMART bearer token, or a session token.")
    return p


def _resource_type(path: str, kwargs: dict) -> str | None:
    """The resource type an interaction is about: the <rt> of the URL, or a fixed one (/Patient/...)."""
    if "rt" in kwargs:
        return kwargs["rt"]
    first = path.strip("/").split("/")[0]
    return first if first and first[0].isupper() else None


def check_scopes(p: Principal, route, kwargs: dict) -> None:
    """403 when the caller's SMART token does not name this route's interaction on its resource type."""
    if p.smart is None or route.interaction in ("batch", "transaction"):
        return
    # Bulk $export (also at Patient/ and Group/ level) filters what it writes type by type with the
    # token's scopes; the kick-off needs some read scope, not one for Group (Bulk Data 2.0 asks none).
    bulk = route.operation in ("export", "patient-export", "group-export")
    rt = None if bulk else _resource_type(route.path, kwargs)
    if rt is None:  # system-level history: some type must be searchable at all
        allowed = any(route.scope in rule.letters for rule in p.smart.scopes.rules)
    elif rt == "Binary":  # a document's file goes with the document
        allowed = smart_permits(p, "Binary", "r") or smart_permits(p, "DocumentReference", "r")
    else:
        allowed = smart_permits(p, rt, route.scope)
    if not allowed:
        raise Forbidden(f"The access token's scopes do not allow this interaction ({route.interaction} "
                        f"{rt or 'on the system'}).")


def scoped(route) -> Callable:
    """The route's handler behind the SMART scope check (SMART.md 'Resource server': 403 outside the
    scopes). Batch and transaction entries are checked one by one by the services instead."""
    handler = route.handler

    @wraps(handler)
    def view(**kwargs):
        check_scopes(current_principal(), route, kwargs)
        return handler(**kwargs)

    return view
