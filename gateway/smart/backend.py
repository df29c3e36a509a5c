"""SMART Backend Services: the client_credentials grant and private_key_jwt client authentication.

authlib's defaults that SMART does not allow, and what is done about each here:
- Client assertions: joserfc (authlib 1.7+) refuses RS384 and ES384 unless the algorithms are passed
  explicitly; authlib does not cap an assertion's exp, does not look keys up by kid in a JWKS URL and does
  not check `jku`. PrivateKeyJWT does all of that, and every failure is 401 invalid_client.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from gateway import scopes as smart_scopes
from gateway.smart import clients, tokens, urls
from gateway.smart.requests import audit_token, session

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Backend Services: "exp ... no more than five minutes in the future"; a few seconds for clock skew.
MAX_ASSERTION_LIFETIME = 300
CLOCK_SKEW = 5


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
