"""SMART Backend Services: client_credentials with a private_key_jwt assertion (RS384 and ES384), the key
found by kid in the registered JWKS or at the registered JWKS URL (`jku` must name that URL), jti never
reused, exp at most five minutes ahead, aud = the token URL; every failure 401 invalid_client; tokens of at
most 300 s without refresh; scopes limited to the registration; data limited to what patients granted to
the client's provider."""
from __future__ import annotations

import time

import pytest

from gateway.smart import clients as client_registry
from tests.conftest import pointer
from tests.smart.conftest import TOKEN_URL, client_credentials, make_key, share


@pytest.fixture(autouse=True)
def fresh_jwks_cache():
    client_registry._jwks_cache.clear()
    yield
    client_registry._jwks_cache.clear()


@pytest.fixture
def backend(smart, rs384, es384):
    return smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk, es384.public_jwk]},
                          redirect_uris=(), scope="system/*.rs")


def unauthorized(r) -> None:
    assert r.status_code == 401, (r.status_code, r.json)
    assert r.json["error"] == "invalid_client"


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_rs384_and_es384_are_accepted(smart, backend, rs384, es384, alg):
    key = rs384 if alg == "RS384" else es384
    r = smart.token(None, client_credentials(key.assertion(backend.client_id)))
    assert r.status_code == 200, r.json
    t = r.json
    assert t["token_type"] == "Bearer" and 0 < t["expires_in"] <= 300 and t["scope"] == "system/*.rs"
    assert "refresh_token" not in t and "patient" not in t and "id_token" not in t
    assert r.headers["Cache-Control"] == "no-store"


def test_replayed_jti_is_refused(smart, backend, rs384):
    assertion = rs384.assertion(backend.client_id, jti="once-only")
    assert smart.token(None, client_credentials(assertion)).status_code == 200
    unauthorized(smart.token(None, client_credentials(assertion)))
    unauthorized(smart.token(None, client_credentials(rs384.assertion(backend.client_id, jti="once-only"))))


@pytest.mark.parametrize("exp_in", [301 + 10, 3600])
def test_assertion_exp_too_far_ahead(smart, backend, rs384, exp_in):
    unauthorized(smart.token(None, client_credentials(rs384.assertion(backend.client_id, exp_in=exp_in))))


def test_expired_assertion(smart, backend, rs384):
    unauthorized(smart.token(None, client_credentials(rs384.assertion(backend.client_id, exp_in=-120))))


def test_unknown_kid(smart, backend, rs384):
    other = make_key("RS384")
    unauthorized(smart.token(None, client_credentials(other.assertion(backend.client_id))))
    # the right kid, but signed by another key
    forged = make_key("RS384")
    forged.kid = rs384.kid
    unauthorized(smart.token(None, client_credentials(forged.assertion(backend.client_id))))


def test_missing_kid(smart, backend, rs384):
    import jwt as pyjwt

    now = int(time.time())
    assertion = pyjwt.encode({"iss": backend.client_id, "sub": backend.client_id, "aud": TOKEN_URL, "exp": now + 60,
                              "jti": "x1"}, rs384.private_pem, algorithm="RS384")
    unauthorized(smart.token(None, client_credentials(assertion)))


@pytest.mark.parametrize("claims", [
    {"aud": "http://localhost/fhir"}, {"aud": "https://elsewhere.example.org/oauth/token"},
    {"iss": "someone-else"}, {"jti": ""},
])
def test_bad_claims(smart, backend, rs384, claims):
    unauthorized(smart.token(None, client_credentials(rs384.assertion(backend.client_id, **claims))))


def test_other_algorithms_are_refused(smart, backend, rs384):
    import jwt as pyjwt

    now = int(time.time())
    body = {"iss": backend.client_id, "sub": backend.client_id, "aud": TOKEN_URL, "exp": now + 60, "jti": "rs256"}
    rs256 = pyjwt.encode(body, rs384.private_pem, algorithm="RS256", headers={"kid": rs384.kid})
    unauthorized(smart.token(None, client_credentials(rs256)))
    hs = pyjwt.encode({**body, "jti": "hs"}, "a-shared-secret-that-is-long-enough-for-hs384-signing!!", algorithm="HS384",
                      headers={"kid": rs384.kid})
    unauthorized(smart.token(None, client_credentials(hs)))


def test_unknown_client_and_wrong_method(smart, rs384):
    unauthorized(smart.token(None, client_credentials(rs384.assertion("no-such-client"))))
    public = smart.register(kind="none")
    unauthorized(smart.token(None, client_credentials(rs384.assertion(public.client_id))))
    unauthorized(smart.token(None, {"grant_type": "client_credentials", "scope": "system/*.rs",
                                    "client_id": public.client_id}))


def test_bad_grant_type_is_400(smart, backend, rs384):
    r = smart.token(None, client_credentials(rs384.assertion(backend.client_id), grant_type="urn:nope"))
    assert r.status_code == 400 and r.json["error"] == "unsupported_grant_type"


def test_scope_limited_to_the_registration(smart, backend, rs384):
    r = smart.token(None, client_credentials(rs384.assertion(backend.client_id),
                                             scope="system/Observation.rs system/Patient.cruds patient/*.rs"))
    assert r.status_code == 200 and r.json["scope"] == "system/Observation.rs"
    r = smart.token(None, client_credentials(rs384.assertion(backend.client_id), scope="system/Patient.cud"))
    assert r.status_code == 400 and r.json["error"] == "invalid_scope"


class FakeResponse:
    def __init__(self, body):
        self.body = body
        self.content = b"{}"

    def raise_for_status(self):
        pass

    def json(self):
        return self.body


@pytest.fixture
def jwks_server(monkeypatch):
    """The client's JWKS URL, served from memory: {url: jwks}; counts fetches."""
    served: dict[str, dict] = {}
    fetched: list[str] = []

    def get(url, **kw):
        fetched.append(url)
        return FakeResponse(served[url])

    monkeypatch.setattr(client_registry.requests, "get", get)
    served["fetched"] = fetched  # type: ignore[assignment]
    return served


def test_jwks_url_and_jku(smart, rs384, jwks_server):
    url = "https://backend.example.org/.well-known/jwks.json"
    jwks_server[url] = {"keys": [rs384.public_jwk]}
    app = smart.register(kind="private_key_jwt", jwks_url=url, redirect_uris=(), scope="system/*.rs")
    assert smart.token(None, client_credentials(rs384.assertion(app.client_id))).status_code == 200
    ok = rs384.assertion(app.client_id, headers={"jku": url})
    assert smart.token(None, client_credentials(ok)).status_code == 200
    assert jwks_server["fetched"] == [url], "the JWKS is cached"
    bad = rs384.assertion(app.client_id, headers={"jku": "https://attacker.example.org/jwks.json"})
    unauthorized(smart.token(None, client_credentials(bad)))
    assert "https://attacker.example.org/jwks.json" not in jwks_server["fetched"]


def test_jku_with_a_registered_jwks_is_refused(smart, backend, rs384):
    bad = rs384.assertion(backend.client_id, headers={"jku": "https://attacker.example.org/jwks.json"})
    unauthorized(smart.token(None, client_credentials(bad)))


def test_key_rotation_at_the_jwks_url_is_picked_up(smart, rs384, jwks_server):
    url = "https://backend.example.org/jwks"
    jwks_server[url] = {"keys": [rs384.public_jwk]}
    app = smart.register(kind="private_key_jwt", jwks_url=url, redirect_uris=(), scope="system/*.rs")
    assert smart.token(None, client_credentials(rs384.assertion(app.client_id))).status_code == 200
    new = make_key("ES384")
    jwks_server[url] = {"keys": [rs384.public_jwk, new.public_jwk]}
    assert smart.token(None, client_credentials(new.assertion(app.client_id))).status_code == 200


def test_system_token_sees_only_what_patients_granted_to_its_provider(smart, provider, alice, bob, rs384, master):
    uid, prov = provider
    share(alice, uid, prov, scope=("labs",))
    other = master.post("/classes/Provider", {"name": "Other Clinic", "kind": "organization"}).json["objectId"]
    share(bob, uid, None, scope=("labs",))  # to the doctor's login only, not to the provider
    app = smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk]}, redirect_uris=(),
                         scope="system/*.rs", provider_id=prov)
    t = smart.token(None, client_credentials(rs384.assertion(app.client_id), scope="system/*.rs")).json
    fhir = smart.fhir(t["access_token"])
    labs = fhir.search("Observation", {"_count": "100"})
    subjects = {e["resource"]["subject"]["reference"].split("/")[-1] for e in labs.get("entry", [])}
    assert subjects == {alice.patient_id}
    assert fhir.search("Immunization").get("total") == 0  # not granted
    assert fhir.get(f"Patient/{bob.patient_id}").status_code == 404
    assert fhir.get(f"Observation/{bob.record['Observation'][0]}").status_code == 404
    assert fhir.read(f"Patient/{alice.patient_id}")["id"] == alice.patient_id
    # a client with no provider sees nothing at all
    lone = smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk]}, redirect_uris=(),
                          scope="system/*.rs", name="Lone")
    t2 = smart.token(None, client_credentials(rs384.assertion(lone.client_id))).json
    assert smart.fhir(t2["access_token"]).search("Observation").get("total") == 0
    assert other and pointer


def test_system_token_lifetime(smart, backend, rs384, db_session):
    from sqlalchemy import select

    from gateway.models.oauth import OAuthToken

    smart.token(None, client_credentials(rs384.assertion(backend.client_id)))
    row = db_session.scalars(select(OAuthToken)).all()[-1]
    assert (row.expires_at - row.issued_at).total_seconds() <= 300
