"""authlib's view of our requests and rows: the current request at its public URL, an authorize request
kept while the person decides, the code and token rows as authlib's mixins, and the client lookup."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import request as flask_request
from sqlalchemy.orm import Session

from gateway import audit
from gateway.access import Principal
from gateway.extensions import db
from gateway.models.oauth import AuthorizationCode, OAuthGrant, OAuthToken
from gateway.smart import clients, urls


def session() -> Session:
    return db.session


# ---- requests ----

class GatewayRequest(OAuth2Request):
    """The current Flask request, seen at its public URL (PHR_BASE_URL), so that authlib's https check
    judges the address clients use, not the one a proxy forwards to."""

    def __init__(self):
        path = flask_request.full_path.rstrip("?")
        super().__init__(flask_request.method, urls.base() + path, headers=flask_request.headers)
        self._request = flask_request
        self.payload = FlaskOAuth2Payload(flask_request)

    @property
    def args(self):
        return self._request.args

    @property
    def form(self):
        return self._request.form


class StoredAuthorizeRequest(OAuth2Request):
    """An authorize request kept in the sign-in session while the person signs in and decides."""

    def __init__(self, params: dict[str, str]):
        super().__init__("GET", urls.endpoint("authorize"), headers=flask_request.headers)
        self.payload = BasicOAuth2Payload(dict(params))
        #: What the person approved on the consent page, and on which record.
        self.granted_scope: str | None = None
        self.patient_id: str | None = None
        self.auth_time: int | None = None

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


# ---- records as authlib sees them ----

class CodeRecord:
    """authlib's AuthorizationCodeMixin (and the OIDC one) over an AuthorizationCode row."""

    def __init__(self, row: AuthorizationCode):
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return self.row.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class TokenRecord:
    """authlib's TokenMixin over a token row and its grant."""

    def __init__(self, token: OAuthToken, grant: OAuthGrant):
        self.token = token
        self.grant = grant

    def check_client(self, client) -> bool:
        return self.token.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.token.scope

    def get_expires_in(self) -> int:
        if self.token.expires_at is None:
            return 0
        return int((self.token.expires_at - self.token.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.token.expires_at is not None and self.token.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        return self.token.revoked_at is not None or self.grant.revoked_at is not None


def query_client(client_id: Any) -> clients.Client | None:
    row = clients.get_client(session(), client_id)
    return clients.Client(row) if row else None


def audit_token(grant: OAuthGrant, grant_type: str, scope: str) -> None:
    p = Principal(user_id=grant.user_id, client_id=grant.client_id)
    audit.record(session(), p, "token", "OAuthGrant", grant.grant_id, profile_id=grant.patient_id,
                 details={"client_id": grant.client_id, "grant_type": grant_type, "scope": scope})
