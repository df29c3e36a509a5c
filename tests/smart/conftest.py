"""Helpers for the SMART tests: clients registered in the test's database, a browser-like walk through the
authorize pages with the Flask test client, PKCE pairs, Backend Services assertions signed with PyJWT.

The app runs at http://localhost (a loopback address, where OAuth over plain http is allowed)."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from gateway.smart.clients import create_client
from tests.conftest import pointer
from tests.fhir.conftest import Fhir, Person, alice, anonymous, bob, load_record, person  # noqa: F401 (fixtures)

BASE = "http://localhost"
FHIR = f"{BASE}/fhir"
TOKEN_URL = f"{BASE}/oauth/token"
REDIRECT = "https://app.example.org/callback"
PASSWORD = "pw-123456"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "BASE_URL": BASE}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class App:
    """A registered client and how it authenticates at the token endpoint."""

    client_id: str
    secret: str | None = None
    redirect_uri: str = REDIRECT

    def auth(self, data: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        headers: dict[str, str] = {}
        if self.secret:
            raw = f"{self.client_id}:{self.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        else:
            data = {**data, "client_id": self.client_id}
        return data, headers


@dataclass
class Launch:
    """The outcome of an authorize walk: the redirect back to the app and the PKCE verifier."""

    location: str
    verifier: str
    state: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.params.get("code")


class Smart:
    """Drives the authorization server through the Flask test client, as a browser and an app would."""

    def __init__(self, client, db_session):
        self.client = client
        self.db = db_session

    # -- registration --
    def register(self, *, kind: str = "none", scope: str | None = None, redirect_uris=(REDIRECT,), jwks=None,
                 jwks_url=None, provider_id=None, name: str = "Health Buddy") -> App:
        made = create_client(self.db, name, auth_method=kind, redirect_uris=list(redirect_uris), scope=scope,
                             jwks=jwks, jwks_url=jwks_url, provider_id=provider_id)
        self.db.commit()
        return App(made.row.client_id, made.secret, redirect_uris[0] if redirect_uris else REDIRECT)

    # -- the authorize pages --
    def authorize_params(self, app: App, scope: str, **over) -> tuple[dict[str, str], str]:
        verifier, challenge = pkce()
        params = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri,
                  "scope": scope, "state": secrets.token_urlsafe(8), "aud": FHIR, "code_challenge": challenge,
                  "code_challenge_method": "S256"}
        params.update(over)
        return {k: v for k, v in params.items() if v is not None}, verifier

    def start(self, params: dict[str, str], method: str = "GET"):
        if method == "GET":
            return self.client.get("/oauth/authorize?" + urlencode(params))
        return self.client.post("/oauth/authorize", data=params)

    def sign_in(self, page_url: str, username: str, password: str = PASSWORD):
        page = self.client.get(page_url)
        assert page.status_code == 200, page.get_data(as_text=True)[:2000]
        html = page.get_data(as_text=True)
        if 'name="password"' not in html:
            return page  # already signed in: the consent page
        nxt = re.search(r'name="next" value="([^"]+)"', html).group(1)
        r = self.client.post("/oauth/sign-in", data={"csrf": csrf_of(html), "next": nxt, "username": username,
                                                     "password": password})
        assert r.status_code == 303, r.get_data(as_text=True)[:2000]
        return self.client.get(r.headers["Location"])

    def launch(self, app: App, scope: str, username: str, *, patient: str | None = None, untick=(),
               decision: str = "approve", method: str = "GET", **over) -> Launch:
        """The whole authorize walk: request, sign in, choose the record, untick, approve (or deny)."""
        params, verifier = self.authorize_params(app, scope, **over)
        r = self.start(params, method)
        if r.status_code != 303:
            return Launch(r.headers.get("Location", ""), verifier, params.get("state", ""),
                          query_of(r.headers.get("Location", "")))
        consent = self.sign_in(r.headers["Location"], username)
        html = consent.get_data(as_text=True)
        assert consent.status_code == 200, html[:2000]
        ticked = [s for s in re.findall(r'name="scope" value="([^"]+)"', html) if s not in untick]
        form: dict[str, Any] = {"csrf": csrf_of(html), "decision": decision, "scope": ticked}
        if patient:
            form["patient"] = patient
        rid = urlsplit(r.headers["Location"]).path.split("/")[-1]
        done = self.client.post(f"/oauth/authorize/{rid}/decide", data=form)
        assert done.status_code == 302, done.get_data(as_text=True)[:2000]
        location = done.headers["Location"]
        return Launch(location, verifier, params["state"], query_of(location))

    # -- the token endpoint --
    def token(self, app: App | None, data: dict[str, str], headers: dict[str, str] | None = None):
        if app is not None:
            data, auth_headers = app.auth(data)
            headers = {**auth_headers, **(headers or {})}
        return self.client.post("/oauth/token", data=data, headers=headers or {})

    def exchange(self, app: App, launch: Launch, **over):
        data = {"grant_type": "authorization_code", "code": launch.code, "redirect_uri": app.redirect_uri,
                "code_verifier": launch.verifier, **over}
        return self.token(app, {k: v for k, v in data.items() if v is not None})

    def login(self, app: App, scope: str, username: str, **kw) -> dict[str, Any]:
        """launch + exchange; the token response."""
        launch = self.launch(app, scope, username, **kw)
        assert launch.code, launch.location
        r = self.exchange(app, launch)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.json

    def fhir(self, access_token: str) -> Fhir:
        return BearerFhir(self.client, access_token)


class BearerFhir(Fhir):
    def __init__(self, client, access_token: str):
        super().__init__(client)
        self.access_token = access_token

    def headers(self, extra=None):
        h = super().headers(extra)
        h["Authorization"] = f"Bearer {self.access_token}"
        return h


@pytest.fixture
def smart(client, db_session) -> Smart:
    return Smart(client, db_session)


# ---- Backend Services keys and assertions ----

@dataclass
class KeyPair:
    alg: str
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]

    def assertion(self, client_id: str, *, aud: str = TOKEN_URL, exp_in: int = 240, jti: str | None = None,
                  headers: dict[str, Any] | None = None, **claims) -> str:
        now = int(time.time())
        body = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "iat": now,
                "jti": str(uuid.uuid4()) if jti is None else jti, **claims}
        return pyjwt.encode(body, self.private_pem, algorithm=self.alg,
                            headers={"kid": self.kid, "typ": "JWT", **(headers or {})})


def make_key(alg: str = "RS384") -> KeyPair:
    if alg == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAKey.import_key(private.public_key()).as_dict(private=False)
    else:
        private = ec.generate_private_key(ec.SECP384R1())
        jwk = ECKey.import_key(private.public_key()).as_dict(private=False)
    kid = secrets.token_hex(8)
    jwk.update(kid=kid, alg=alg, use="sig")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return KeyPair(alg, kid, pem, jwk)


@pytest.fixture(scope="session")
def rs384() -> KeyPair:
    return make_key("RS384")


@pytest.fixture(scope="session")
def es384() -> KeyPair:
    return make_key("ES384")


def client_credentials(assertion: str, scope: str = "system/*.rs", **extra) -> dict[str, str]:
    return {"grant_type": "client_credentials", "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, **extra}


# ---- people ----

@pytest.fixture
def provider(make_user, master):
    """A provider login with its directory entry: (user id, Provider objectId)."""
    uid, _ = make_user("dr.grey", role="provider")
    r = master.post("/classes/Provider", {"name": "Dr Grey", "kind": "practitioner", "user": pointer("_User", uid)})
    assert r.status_code == 201, r.json
    return uid, r.json["objectId"]


def share(owner: Person, grantee_uid: str, provider_id: str | None = None, scope=("labs",), level: str = "read") -> str:
    body = {"profile": pointer("Profile", owner.patient_id), "grantee": pointer("_User", grantee_uid),
            "accessLevel": level, "scope": list(scope)}
    if provider_id:
        body["provider"] = pointer("Provider", provider_id)
    r = owner.parse.post("/classes/SharedAccess", body)
    assert r.status_code == 201, r.json
    return r.json["objectId"]
