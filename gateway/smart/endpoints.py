"""Token introspection (RFC 7662) and revocation (RFC 7009) at /oauth."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from gateway import audit
from gateway.access import Principal
from gateway.smart import tokens, urls
from gateway.smart.grants import USER_AUTH_METHODS
from gateway.smart.requests import TokenRecord, session


def _query_token(token_string: str, hint: str | None) -> TokenRecord | None:
    kind = {"access_token": "access", "refresh_token": "refresh"}.get(hint or "")
    found = tokens.find_token(session(), token_string, kind) or (kind and tokens.find_token(session(), token_string))
    return TokenRecord(*found) if found else None


class Introspection(IntrospectionEndpoint):
    """RFC 7662. The caller authenticates as a client (and sees its own tokens) or with a live bearer
    token (a resource server's)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt", "none"]  # noqa: RUF012

    def create_endpoint_response(self, request):
        bearer = _bearer(request.headers)
        if bearer and tokens.live_access_token(session(), bearer):
            request.client = None
        else:
            self.authenticate_endpoint_client(request)
        token = self.authenticate_token(request, request.client)
        return 200, self.create_introspection_payload(token), [("Content-Type", "application/json"),
                                                                 ("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    def query_token(self, token_string, token_type_hint):
        return _query_token(token_string, token_type_hint)

    def check_permission(self, token: TokenRecord, client, request) -> bool:
        return client is None or token.check_client(client)

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        grant = token.grant
        out: dict[str, Any] = {
            "active": True, "scope": token.token.scope, "client_id": token.token.client_id,
            "token_type": "Bearer" if token.token.kind == "access" else "refresh_token",
            "exp": int(token.token.expires_at.timestamp()) if token.token.expires_at else None,
            "iat": int(token.token.issued_at.timestamp()), "iss": urls.issuer(),
            "aud": grant.audience, "sub": grant.user_id or grant.client_id,
        }
        if grant.patient_id:
            out["patient"] = grant.patient_id
        if grant.fhir_user:
            out["fhirUser"] = grant.fhir_user
        return {k: v for k, v in out.items() if v is not None}


class Revocation(RevocationEndpoint):
    """RFC 7009; revoking any token of a grant ends the whole grant (SMART)."""

    CLIENT_AUTH_METHODS = USER_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return _query_token(token_string, token_type_hint)

    def revoke_token(self, token: TokenRecord, request) -> None:
        tokens.revoke_grant(session(), token.grant.grant_id)
        audit.record(session(), Principal(user_id=token.grant.user_id, client_id=token.grant.client_id), "revoke",
                     "OAuthGrant", token.grant.grant_id, profile_id=token.grant.patient_id,
                     details={"client_id": token.grant.client_id, "via": "revocation endpoint"})


def _bearer(headers) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None
