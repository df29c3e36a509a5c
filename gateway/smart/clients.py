"""Registered OAuth clients: registration (the CLI and /oauth/register), the authlib ClientMixin view of a
row, and the public keys of asymmetric clients (SMART Backend Services, 'Registering a client')."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from gateway import scopes as smart_scopes
from gateway.db import random_alnum
from gateway.errors import InvalidInput, NotFound
from gateway.models import Provider
from gateway.models.oauth import OAuthClient

AUTH_METHODS = ("none", "client_secret_basic", "private_key_jwt")
#: What a client may be granted when registration names no scope: everything a person can approve, and,
#: for asymmetric clients, read access for Backend Services (writes must be asked for explicitly).
DEFAULT_USER_SCOPE = ("openid fhirUser profile launch launch/patient offline_access online_access "
                      "patient/*.* user/*.*")
DEFAULT_SYSTEM_SCOPE = "system/*.rs"
#: Client assertions are signed with these (SMART Backend Services, 'Signature algorithms').
ASSERTION_ALGORITHMS = ("RS384", "ES384")


def new_client_id() -> str:
    """24 letters and digits (~143 bits): a token_urlsafe id began with '-' one time in 64, which command-line
    tools (smart-fetch --smart-client-id, curl -u) then read as an option."""
    return random_alnum(24)


def hash_secret(secret: str) -> str:
    """Secrets are 256 random bits, so one SHA-256 is enough (no password stretching needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class NewClient:
    row: OAuthClient
    secret: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"client_id": self.row.client_id}
        if self.secret:
            out["client_secret"] = self.secret
        return out


def _check_jwks(jwks: Any) -> dict[str, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidInput("a JWKS is an object with a non-empty 'keys' array")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or not key.get("kid"):
            raise InvalidInput("every key of the JWKS needs a 'kid' (clients name their key in each assertion)")
        if key.get("kty") not in ("RSA", "EC"):
            raise InvalidInput(f"key {key.get('kid')}: only RSA and EC keys sign RS384 / ES384 assertions")
        if any(k in key for k in ("d", "p", "q")):
            raise InvalidInput(f"key {key['kid']} holds private parts: register the public key only")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise InvalidInput(f"the JWKS cannot be read: {e}") from None
    return jwks


def create_client(session: Session, name: str, *, auth_method: str, redirect_uris: list[str] = (),
                  scope: str | None = None, jwks: dict[str, Any] | None = None, jwks_url: str | None = None,
                  provider_id: str | None = None) -> NewClient:
    """Register a client. Secrets are returned once and stored hashed."""
    if not name or not name.strip():
        raise InvalidInput("a client needs a name")
    if auth_method not in AUTH_METHODS:
        raise InvalidInput(f"auth method must be one of {', '.join(AUTH_METHODS)}")
    if auth_method == "private_key_jwt":
        if bool(jwks) == bool(jwks_url):
            raise InvalidInput("an asymmetric client registers either a JWKS or a JWKS URL")
        if jwks:
            jwks = _check_jwks(jwks)
        if jwks_url and not jwks_url.startswith(("https://", "http://")):
            raise InvalidInput("the JWKS URL must be an http(s) URL")
    elif jwks or jwks_url:
        raise InvalidInput("only private_key_jwt clients register keys")
    for uri in redirect_uris:
        if not uri.startswith(("https://", "http://")) or "#" in uri:
            raise InvalidInput(f"redirect URI {uri!r} must be an absolute http(s) URL without a fragment")
    if scope is None:
        scope = DEFAULT_USER_SCOPE + (" " + DEFAULT_SYSTEM_SCOPE if auth_method == "private_key_jwt" else "")
    try:
        parsed = smart_scopes.parse(scope, strict=True)
    except smart_scopes.ScopeError as e:
        raise InvalidInput(str(e)) from None
    if provider_id is not None and session.get(Provider, provider_id) is None:
        raise NotFound(f"provider {provider_id} does not exist")
    secret = secrets.token_urlsafe(32) if auth_method == "client_secret_basic" else None
    row = OAuthClient(
        client_id=new_client_id(), name=name.strip(), auth_method=auth_method,
        secret_hash=hash_secret(secret) if secret else None, redirect_uris=list(redirect_uris),
        scope=parsed.text, jwks=jwks, jwks_url=jwks_url, provider_id=provider_id,
    )
    session.add(row)
    session.flush()
    return NewClient(row, secret)


def get_client(session: Session, client_id: Any) -> OAuthClient | None:
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    return session.get(OAuthClient, client_id)


class Client:
    """authlib's ClientMixin over an OAuthClient row (rfc6749/models.py)."""

    def __init__(self, row: OAuthClient):
        self.row = row
        self.client_id = row.client_id

    # -- identity and secrets --
    def get_client_id(self) -> str:
        return self.row.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.row.secret_hash:
            return False
        return hmac.compare_digest(self.row.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Each client authenticates one way, at every endpoint (token, introspection, revocation).
        return method == self.row.auth_method

    # -- redirects and grants --
    def get_default_redirect_uri(self) -> None:
        return None  # SMART: redirect_uri is required, and must match a registered one exactly

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in (self.row.redirect_uris or [])

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and bool(self.row.redirect_uris)

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type in ("authorization_code", "refresh_token"):
            return bool(self.row.redirect_uris)
        if grant_type == "client_credentials":  # Backend Services: asymmetric clients only
            return self.row.auth_method == "private_key_jwt"
        return False

    # -- scopes --
    def get_allowed_scope(self, scope: str | None) -> str:
        """What of `scope` this client may ever be granted (requests are narrowed, never refused)."""
        requested = smart_scopes.parse(scope)
        return smart_scopes.narrow(requested, smart_scopes.parse(self.row.scope)).text

    @property
    def is_public(self) -> bool:
        return self.row.auth_method == "none"


# ---- public keys of asymmetric clients ----

_JWKS_TTL = 300.0
_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_lock = threading.Lock()


class KeyUnavailable(Exception):
    pass


def fetch_jwks(url: str, *, refresh: bool = False, timeout: float = 5.0) -> dict[str, Any]:
    """The JWKS at a client's registered URL, cached for a few minutes (refetched when a kid is unknown,
    so that a client's key rotation works at once)."""
    now = time.monotonic()
    with _jwks_lock:
        hit = _jwks_cache.get(url)
    if hit and not refresh and now - hit[0] < _JWKS_TTL:
        return hit[1]
    try:
        r = requests.get(url, timeout=timeout, headers={"Accept": "application/json"}, allow_redirects=False)
        r.raise_for_status()
        if len(r.content) > 256 * 1024:
            raise KeyUnavailable("the JWKS is too large")
        data = r.json()
    except (requests.RequestException, ValueError) as e:
        raise KeyUnavailable(f"the JWKS URL could not be read: {type(e).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeyUnavailable("the JWKS URL did not answer a JWKS")
    with _jwks_lock:
        _jwks_cache[url] = (now, data)
    return data


def client_key(row: OAuthClient, kid: str, jku: str | None) -> dict[str, Any]:
    """The client's public key named `kid`: from the registered JWKS, or from the registered JWKS URL
    (a `jku` header must name exactly that URL)."""
    if jku is not None and jku != row.jwks_url:
        raise KeyUnavailable("the jku header does not match the registered JWKS URL")
    if row.jwks_url:
        for refresh in (False, True):
            found = _by_kid(fetch_jwks(row.jwks_url, refresh=refresh), kid)
            if found:
                return found
        raise KeyUnavailable("no key with that kid at the registered JWKS URL")
    found = _by_kid(row.jwks or {}, kid)
    if not found:
        raise KeyUnavailable("no registered key has that kid")
    return found


def _by_kid(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    return next((k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid), None)
