"""The grants a person approves (SMART App Launch 2.2): the authorization code with strict PKCE and the
OpenID id_token, and the refresh token.

authlib's defaults that SMART does not allow, and what is done about each here:
- PKCE: authlib accepts `plain` and only requires PKCE of public clients. StrictPKCE requires S256 of every
  client, and answers a missing, blank or wrong verifier (also the challenge sent back as the verifier)
  with invalid_grant.
- Refresh tokens: authlib issues them to any client allowed the grant and does not rotate; we issue them
  only with offline_access or online_access, rotate at every use, bind them to their client, and allow a
  refresh to narrow the scope only.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from authlib.oidc.core import grants as oidc_grants

from gateway import scopes as smart_scopes
from gateway.models.oauth import OAuthGrant
from gateway.smart import keys, people, tokens, urls
from gateway.smart.requests import CodeRecord, StoredAuthorizeRequest, TokenRecord, audit_token, session

USER_AUTH_METHODS = ["none", "client_secret_basic", "private_key_jwt"]


def token_context(grant: OAuthGrant) -> dict[str, Any]:
    """SMART launch context for the token response (App Launch 2.2, 'Response to access token request')."""
    if grant.user_id is None:
        return {}
    out: dict[str, Any] = {"need_patient_banner": True, "smart_style_url": urls.endpoint("style")}
    if grant.patient_id:
        out["patient"] = grant.patient_id
    return out


class RefreshOnlyWithOfflineAccess:
    """A refresh token only when offline_access or online_access was granted (SMART)."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        include = include_refresh_token and tokens.refresh_ttl(scope or "") is not None
        return super().generate_token(user=user, scope=scope, grant_type=grant_type, expires_in=expires_in,
                                      include_refresh_token=include)


# ---- authorization code ----

class StrictPKCE(CodeChallenge):
    """PKCE with S256 for every client (SMART App Launch 2.2: 'required for all apps')."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (authlib's class attributes)
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}  # noqa: RUF012

    def __init__(self):
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is not accepted)")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        verifier = grant.request.form.get("code_verifier")
        code: CodeRecord = grant.request.authorization_code
        if not verifier or not verifier.strip():
            raise InvalidGrantError("code_verifier is required")
        if not CODE_VERIFIER_PATTERN.match(verifier):
            raise InvalidGrantError("code_verifier is malformed")
        if code.code_challenge_method != "S256" or not compare_s256_code_challenge(verifier, code.code_challenge):
            raise InvalidGrantError("code_verifier does not match the code_challenge")


class AuthorizationCodeGrant(RefreshOnlyWithOfflineAccess, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        state = self.request.payload.state
        # SMART: `aud` names the FHIR server the app wants; a code for another one is never issued.
        if not urls.same_base(self.request.payload.data.get("aud")):
            raise InvalidRequestError(f"aud must be this server's FHIR base URL ({urls.fhir_base()})",
                                      redirect_uri=redirect_uri, state=state)
        if not self.request.scope:
            raise InvalidScopeError("none of the requested scopes may be granted to this app",
                                    redirect_uri=redirect_uri, state=state)
        return redirect_uri

    def save_authorization_code(self, code: str, request: StoredAuthorizeRequest) -> None:
        data = request.payload.data
        tokens.save_code(
            session(), code, client_id=request.client.get_client_id(), user_id=request.user.object_id,
            redirect_uri=data["redirect_uri"], scope=request.granted_scope or "", patient_id=request.patient_id,
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
            nonce=data.get("nonce"), auth_time=request.auth_time or int(time.time()),
        )

    def query_authorization_code(self, code: str, client) -> CodeRecord | None:
        row = tokens.find_code(session(), code, client.get_client_id())
        if row is None:
            return None
        if row.used:
            # RFC 6749 4.1.2: a code used twice is refused, and what its first use produced is revoked.
            if row.grant_id:
                tokens.revoke_grant(session(), row.grant_id)
            raise InvalidGrantError("the code was already used")
        row.used = True  # a code works once, even when this attempt fails later (PKCE)
        session().flush()
        if row.expires_at <= datetime.now(UTC):
            raise InvalidGrantError("the code expired")
        return CodeRecord(row)

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        authorization_code.row.used = True
        session().flush()

    def authenticate_user(self, authorization_code: CodeRecord) -> people.AuthorizedUser | None:
        row = authorization_code.row
        user = people.load_user(session(), row.user_id)
        if user is None:
            return None
        return people.AuthorizedUser(user, row.patient_id, people.fhir_user(session(), user, row.patient_id,
                                                                             urls.fhir_base()), row.auth_time)

    def save_token(self, token: dict[str, Any]) -> None:
        who: people.AuthorizedUser = self.request.user
        code: CodeRecord = self.request.authorization_code
        if not token.get("scope"):
            raise InvalidScopeError("nothing of what was approved may be granted to this app")
        grant = tokens.start_grant(session(), client_id=self.client.get_client_id(), user_id=who.user.object_id,
                                   scope=token["scope"], patient_id=who.patient_id, audience=urls.fhir_base(),
                                   fhir_user=who.fhir_user)
        tokens.store_tokens(session(), grant, token)
        code.row.grant_id = grant.grant_id
        token.update(token_context(grant))
        audit_token(grant, self.GRANT_TYPE, token["scope"])


class OpenIDCode(oidc_grants.OpenIDCode):
    """id_token (RS256) with fhirUser (SMART App Launch 2.2, 'Scopes for requesting identity data')."""

    def exists_nonce(self, nonce, request) -> bool:
        return tokens.nonce_used(session(), request.payload.client_id, nonce)

    def resolve_client_private_key(self, client):
        return keys.signing_key(session())[1]

    def get_client_algorithm(self, client) -> str:
        return keys.ID_TOKEN_ALG

    def get_encode_header(self, client) -> dict[str, str]:
        return {"alg": keys.ID_TOKEN_ALG, "kid": keys.signing_key(session())[0], "typ": "JWT"}

    def get_client_claims(self, client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": urls.issuer(), "aud": client.get_client_id(), "iat": now, "exp": now + tokens.ACCESS_TTL}

    def generate_user_info(self, user: people.AuthorizedUser, scope: str) -> dict[str, Any]:
        info: dict[str, Any] = {"sub": user.user.object_id}
        if user.fhir_user:
            info["fhirUser"] = user.fhir_user
        if "profile" in scope.split():
            info["preferred_username"] = user.user.username
        return info


# ---- refresh ----

def scope_within(requested: str, granted: str) -> bool:
    """May a refresh ask for `requested` under `granted`? Each scope must be granted, or be a resource
    scope that a granted one covers (patient/Observation.rs under patient/*.rs): narrowing only."""
    granted_items = set(granted.split())
    allowed = smart_scopes.parse(granted)
    for item in set(requested.split()):
        if item in granted_items:
            continue
        try:
            rule = smart_scopes.parse_rule(item)
        except smart_scopes.ScopeError:
            return False
        if not smart_scopes.narrow(smart_scopes.Scopes((rule,)), allowed).rules:
            return False
    return True


class RefreshTokenGrant(RefreshOnlyWithOfflineAccess, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation

    def authenticate_refresh_token(self, refresh_token: str) -> TokenRecord | None:
        found = tokens.find_token(session(), refresh_token, "refresh")
        if found is None:
            return None
        token, grant = found
        if grant.revoked_at is not None:
            return None
        if token.revoked_at is not None:
            # A rotated refresh token came back: a copy is in someone else's hands (RFC 9700 4.14.2).
            tokens.revoke_grant(session(), grant.grant_id)
            return None
        if token.expires_at is not None and token.expires_at <= datetime.now(UTC):
            return None
        return TokenRecord(token, grant)

    def _validate_token_scope(self, token: TokenRecord) -> None:
        scope = self.request.payload.scope
        if scope and not scope_within(scope, token.get_scope()):
            raise InvalidScopeError("a refresh may only narrow the granted scope")

    def authenticate_user(self, refresh_token: TokenRecord) -> people.AuthorizedUser | None:
        grant = refresh_token.grant
        user = people.load_user(session(), grant.user_id)
        if user is None:
            return None
        return people.AuthorizedUser(user, grant.patient_id, grant.fhir_user)

    def save_token(self, token: dict[str, Any]) -> None:
        grant = self.request.refresh_token.grant
        tokens.store_tokens(session(), grant, token)
        token.update(token_context(grant))
        audit_token(grant, self.GRANT_TYPE, token.get("scope", ""))

    def revoke_old_credential(self, refresh_token: TokenRecord) -> None:
        tokens.retire_token(session(), refresh_token.token)
