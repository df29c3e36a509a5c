"""Introspection (RFC 7662) and revocation (RFC 7009): an active token says what it may do and for whom;
unknown, expired or revoked ones are {"active": false}; revoking ends the whole grant at once."""
from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import update

from gateway.db import utcnow
from gateway.models.oauth import OAuthToken
from tests.smart.conftest import FHIR, client_credentials

SCOPE = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs offline_access"


@pytest.fixture
def app_public(smart):
    return smart.register(kind="none")


def introspect(client, token: str, *, bearer: str | None = None, app=None, hint: str | None = None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    headers = {}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    elif app is not None and app.secret:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{app.client_id}:{app.secret}".encode()).decode()
    elif app is not None:
        data["client_id"] = app.client_id
    return client.post("/oauth/introspect", data=data, headers=headers)


def test_active_token(smart, app_public, alice, client):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = introspect(client, t["access_token"], app=app_public)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    info = r.json
    assert info["active"] is True and set(info["scope"].split()) == set(SCOPE.split())
    assert info["client_id"] == app_public.client_id and info["patient"] == alice.patient_id
    assert info["sub"] == alice.user_id and info["fhirUser"] == f"{FHIR}/Patient/{alice.patient_id}"
    assert info["iss"] == client.get("/fhir/.well-known/smart-configuration").json["issuer"]
    assert info["exp"] > info["iat"]
    # a resource server with a live bearer token of its own may introspect too
    other = smart.register(kind="client_secret_basic")
    t2 = smart.login(other, SCOPE, "alice", patient=alice.patient_id)
    assert introspect(client, t["access_token"], bearer=t2["access_token"]).json["active"] is True
    # a refresh token introspects as well
    assert introspect(client, t["refresh_token"], app=app_public, hint="refresh_token").json["active"] is True


def test_unknown_and_expired_are_inactive(smart, app_public, alice, client, db_session):
    r = introspect(client, "no-such-token", app=app_public)
    assert r.status_code == 200 and r.json == {"active": False}
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    db_session.execute(update(OAuthToken).where(OAuthToken.kind == "access")
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    assert introspect(client, t["access_token"], app=app_public).json == {"active": False}


def test_another_clients_token_is_inactive_to_it(smart, app_public, alice, client):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    other = smart.register(kind="client_secret_basic")
    assert introspect(client, t["access_token"], app=other).json == {"active": False}


def test_introspection_needs_authentication(smart, app_public, alice, client):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = client.post("/oauth/introspect", data={"token": t["access_token"]})
    assert r.status_code == 401 and r.json["error"] == "invalid_client"
    r = introspect(client, t["access_token"], bearer="not-a-live-token")
    assert r.status_code == 401


def test_system_token_introspection(smart, rs384, client):
    app = smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk]}, redirect_uris=(),
                         scope="system/*.rs")
    t = smart.token(None, client_credentials(rs384.assertion(app.client_id))).json
    r = client.post("/oauth/introspect", data={"token": t["access_token"], **{
        k: v for k, v in client_credentials(rs384.assertion(app.client_id)).items() if k.startswith("client_")}})
    assert r.status_code == 200, r.json
    assert r.json["active"] is True and r.json["client_id"] == app.client_id and r.json["sub"] == app.client_id
    assert "patient" not in r.json and r.json["exp"] - r.json["iat"] <= 300


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoking_ends_the_whole_grant_at_once(smart, app_public, alice, client, which):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    assert fhir.get(f"Patient/{alice.patient_id}").status_code == 200
    r = client.post("/oauth/revoke", data={"token": t[which], "client_id": app_public.client_id})
    assert r.status_code == 200
    assert fhir.get(f"Patient/{alice.patient_id}").status_code == 401
    refresh = smart.token(app_public, {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json["error"] == "invalid_grant"
    assert introspect(client, t["access_token"], app=app_public).json == {"active": False}
    again = client.post("/oauth/revoke", data={"token": t[which], "client_id": app_public.client_id})
    assert again.status_code == 200  # revoking twice is fine (RFC 7009)


def test_revocation_is_bound_to_the_client(smart, app_public, alice, client):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    other = smart.register(kind="none")
    r = client.post("/oauth/revoke", data={"token": t["access_token"], "client_id": other.client_id})
    assert r.status_code == 400
    assert smart.fhir(t["access_token"]).get(f"Patient/{alice.patient_id}").status_code == 200


def test_unknown_token_revocation_is_ok(smart, app_public, client):
    r = client.post("/oauth/revoke", data={"token": "nothing-like-it", "client_id": app_public.client_id})
    assert r.status_code == 200
