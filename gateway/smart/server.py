"""The authlib AuthorizationServer and its grants, configured for SMART App Launch 2.2 and Backend Services.

authlib's defaults that SMART does not allow, and what is done about each here:
- PKCE: authlib accepts `plain` and only requires PKCE of public clients. StrictPKCE requires S256 of every
  client, and answers a missing, blank or wrong verifier (also the challenge sent back as the verifier)
  with invalid_grant.
- Client assertions: joserfc (authlib 1.7+) refuses RS384 and ES384 unless the algorithms are passed
  explicitly; authlib does not cap an assertion's exp, does not look keys up by kid in a JWKS URL and does
  not check `jku`. PrivateKeyJWT does all of that, and every failure is 401 invalid_client.
- Token lifetime: authlib's default is ten days; ours are an hour (300 s for Backend Services).
- Refresh tokens: authlib issues them to any client allowed the grant and does not rotate; we issue them
  only with offline_access or online_access, rotate at every use, bind them to their client, and allow a
  refresh to narrow the scope only.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import grants as oidc_grants
from flask import current_app
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key
from sqlalchemy.orm import Session

from gateway import audit
from gateway import scopes as smart_scopes
from gateway.access import Principal
from gateway.extensions import db
from gateway.models.oauth import AuthorizationCode, OAuthGrant, OAuthToken
from gateway.smart import clients, keys, people, tokens, urls

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Backend Services: "exp ... no more than five minutes in the future"; a few seconds for clock skew.
MAX_ASSERTION_LIFETIME = 300
CLOCK_SKEW = 5
USER_AUTH_METHODS = ["none", "client_secret_basic", "private_key_jwt"]
EXPIRES_IN = {"authorization_code": tokens.ACCESS_TTL, "refresh_token": tokens.ACCESS_TTL,
              "client_credentials": tokens.SYSTEM_ACCESS_TTL}


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


def token_context(grant: OAuthGrant) -> dict[str, Any]:
    """SMART launch context for the token response (App Launch 2.2, 'Response to access token request')."""
    if grant.user_id is None:
        return {}
    out: dict[str, Any] = {"need_patient_banner": True, "smart_style_url": urls.endpoint("style")}
    if grant.patient_id:
        out["patient"] = grant.patient_id
    return out


def audit_token(grant: OAuthGrant, grant_type: str, scope: str) -> None:
    p = Principal(user_id=grant.user_id, client_id=grant.client_id)
    audit.record(session(), p, "token", "OAuthGrant", grant.grant_id, profile_id=grant.patient_id,
                 details={"client_id": grant.client_id, "grant_type": grant_type, "scope": scope})


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


# ---- Backend Services ----

class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012 (authlib's class attribute)

    def validate_token_request(self):
        super().validate_token_request()
        requested = self.request.payload.scope
        if not requested:
            raise InvalidScopeError("scope is required (system/... scopes)")
        system = smart_scopes.Scopes(tuple(r for r in smart_scopes.parse(requested).rules if r.level == "system"))
        granted = smart_scopes.narrow(system, smart_scopes.parse(self.client.row.scope))
        if not granted.rules:
            raise InvalidScopeError("none of the requested system scopes is registered for this client")
        self.request.scope = granted.text

    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        client = self.client
        grant = tokens.start_grant(session(), client_id=client.get_client_id(), user_id=None, scope=token["scope"],
                                   patient_id=None, audience=urls.fhir_base(), fhir_user=None)
        tokens.store_tokens(session(), grant, token)
        audit_token(grant, self.GRANT_TYPE, token["scope"])
        return 200, token, self.TOKEN_RESPONSE_HEADER


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt client authentication (SMART Backend Services, 'Authenticating to the token endpoint')."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=CLOCK_SKEW)

    def __call__(self, query_client, request):
        form = request.form
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return None
        try:
            return self._authenticate(query_client, request, form["client_assertion"])
        except InvalidClientError as e:
            e.status_code = 401
            raise

    def _authenticate(self, query_client, request, assertion: str):
        headers, claims = self.extract_assertion(assertion)
        alg = headers.get("alg")
        if alg not in clients.ASSERTION_ALGORITHMS:
            raise InvalidClientError(description="the assertion must be signed with RS384 or ES384")
        kid = headers.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidClientError(description="the assertion header needs the kid of the signing key")
        client_id = claims.get("sub")
        client = query_client(client_id) if isinstance(client_id, str) else None
        if client is None or client.row.auth_method != "private_key_jwt":
            raise InvalidClientError(description="unknown client, or not registered for private_key_jwt")
        if request.form.get("client_id") not in (None, client_id):
            raise InvalidClientError(description="client_id differs from the assertion subject")
        jku = headers.get("jku")
        try:
            key = import_key(clients.client_key(client.row, kid, jku if isinstance(jku, str) or jku is None else ""))
        except clients.KeyUnavailable as e:
            raise InvalidClientError(description=str(e)) from None
        except (JoseError, ValueError, TypeError):
            raise InvalidClientError(description="the registered key cannot be used") from None
        try:
            # joserfc refuses RS384/ES384 unless they are named here (authlib 1.7+ pitfall).
            token = jwt.decode(assertion, key, algorithms=[alg])
        except (JoseError, ValueError) as e:
            raise InvalidClientError(description=f"the assertion signature is not valid ({type(e).__name__})") from None
        exp = token.claims.get("exp")
        if isinstance(exp, (int, float)) and exp > time.time() + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise InvalidClientError(description="the assertion exp is more than five minutes ahead")
        request.client = client
        self.verify_claims(token.claims)
        return self.authenticate_client(client)

    def get_audiences(self) -> list[str]:
        return [urls.endpoint("token")]

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            return False
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        return tokens.remember_jti(session(), claims["sub"], jti, expires)


# ---- introspection and revocation ----

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


# ---- the server ----

class SmartAuthorizationServer(AuthorizationServer):
    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request
        return GatewayRequest()

    def handle_error_response(self, request, error: OAuth2Error):
        # Backend Services: every failure to authenticate the client is 401 invalid_client.
        if error.error == "invalid_client":
            error.status_code = 401
        return super().handle_error_response(request, error)


def _expires_in(client, grant_type: str) -> int:
    return EXPIRES_IN.get(grant_type, tokens.SYSTEM_ACCESS_TTL)


def build_server(app) -> SmartAuthorizationServer:
    server = SmartAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=_unused_save_token)
    # Replaces the generator init_app made from config, whose default lifetime is ten days.
    server.register_token_generator("default", BearerTokenGenerator(
        lambda **kw: generate_token(48), lambda **kw: generate_token(64), _expires_in))
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(AuthorizationCodeGrant, [StrictPKCE(), OpenIDCode(require_nonce=False)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    return server


def _unused_save_token(token, request):  # pragma: no cover - every grant here saves its own tokens
    raise RuntimeError("grants save their tokens themselves")


def server() -> SmartAuthorizationServer:
    return current_app.extensions["smart_server"]
