"""The authlib AuthorizationServer, configured for SMART App Launch 2.2 and Backend Services: this module
wires together the requests and records (requests.py), the grants a person approves (grants.py: the
authorization code with strict PKCE and OpenID, the refresh token), Backend Services (backend.py:
client_credentials, private_key_jwt) and introspection and revocation (endpoints.py). Each module lists the
authlib defaults that SMART does not allow and what it does about them; the one handled here:
- Token lifetime: authlib's default is ten days; ours are an hour (300 s for Backend Services).
"""
from __future__ import annotations

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import current_app

from gateway.smart import tokens
from gateway.smart.backend import ClientCredentialsGrant, PrivateKeyJWT
from gateway.smart.endpoints import Introspection, Revocation
from gateway.smart.grants import AuthorizationCodeGrant, OpenIDCode, RefreshTokenGrant, StrictPKCE
from gateway.smart.requests import GatewayRequest, StoredAuthorizeRequest, query_client

EXPIRES_IN = {"authorization_code": tokens.ACCESS_TTL, "refresh_token": tokens.ACCESS_TTL,
              "client_credentials": tokens.SYSTEM_ACCESS_TTL}


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


#: StoredAuthorizeRequest is re-exported: the authorize views import it from here with the server.
__all__ = ["EXPIRES_IN", "SmartAuthorizationServer", "StoredAuthorizeRequest", "build_server", "server"]
