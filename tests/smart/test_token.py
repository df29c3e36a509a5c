"""The token endpoint for authorization codes: the SMART token response (patient, banner, style, granted
scope, id_token with fhirUser), headers, lifetimes, PKCE verification, codes that work once and expire,
client authentication (public, client_secret_basic), and the audit trail."""
from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from gateway.db import utcnow
from gateway.models import AuditLog
from gateway.models.oauth import AuthorizationCode
from tests.smart.conftest import BASE, FHIR, pkce

SCOPE = ("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Immunization.rs "
         "offline_access")


@pytest.fixture
def app_public(smart):
    return smart.register(kind="none")


def test_token_response(smart, app_public, alice, client):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = smart.exchange(app_public, launch)
    assert r.status_code == 200, r.json
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Pragma"] == "no-cache"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    t = r.json
    assert t["token_type"] == "Bearer" and t["access_token"] and 0 < t["expires_in"] <= 3600
    assert set(t["scope"].split()) == set(SCOPE.split())
    assert t["patient"] == alice.patient_id and t["need_patient_banner"] is True
    style = client.get(t["smart_style_url"][len(BASE):])
    assert style.status_code == 200 and style.mimetype == "application/json"
    assert t["refresh_token"]
    assert smart.fhir(t["access_token"]).read(f"Patient/{alice.patient_id}")["id"] == alice.patient_id


def test_id_token(smart, app_public, alice, client):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id, nonce="n-0S6_WzA2Mj")
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json)
    token = jwt.decode(t["id_token"], jwks, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"]
    c = token.claims
    assert c["iss"] == client.get("/fhir/.well-known/smart-configuration").json["issuer"]
    assert c["aud"] == app_public.client_id and c["sub"] == alice.user_id and c["nonce"] == "n-0S6_WzA2Mj"
    assert c["iat"] <= c["exp"] and c["exp"] - c["iat"] <= 3600
    assert c["fhirUser"] == f"{FHIR}/Patient/{alice.patient_id}"
    # fhirUser resolves with the token itself
    fhir_user = smart.fhir(t["access_token"]).read(c["fhirUser"][len(FHIR) + 1:])
    assert fhir_user["resourceType"] == "Patient"


def test_provider_fhir_user_is_a_practitioner(smart, provider, alice, client):
    from tests.smart.conftest import share

    uid, prov = provider
    share(alice, uid, prov, scope=("labs",))
    app = smart.register(kind="none")
    t = smart.login(app, "openid fhirUser user/Observation.rs user/Practitioner.rs", "dr.grey")
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json)
    claims = jwt.decode(t["id_token"], jwks, algorithms=["RS256"]).claims
    assert claims["fhirUser"] == f"{FHIR}/Practitioner/{prov}"
    assert smart.fhir(t["access_token"]).read(f"Practitioner/{prov}")["resourceType"] == "Practitioner"
    assert "patient" not in t


def test_no_refresh_token_without_offline_or_online_access(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/Observation.rs", "alice", patient=alice.patient_id)
    assert "refresh_token" not in t and "id_token" not in t
    online = smart.login(app_public, "launch/patient patient/Observation.rs online_access", "alice",
                         patient=alice.patient_id)
    assert online["refresh_token"]


def test_user_granted_less_than_asked(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id,
                    untick=("patient/Immunization.rs", "offline_access"))
    granted = set(t["scope"].split())
    assert "patient/Immunization.rs" not in granted and "patient/Observation.rs" in granted
    assert "refresh_token" not in t
    fhir = smart.fhir(t["access_token"])
    assert fhir.get("Immunization", {"patient": alice.patient_id}).status_code == 403


def test_client_registration_limits_the_scope(smart, alice):
    app = smart.register(kind="none", scope="launch/patient openid patient/Observation.rs")
    t = smart.login(app, SCOPE, "alice", patient=alice.patient_id)
    assert set(t["scope"].split()) == {"launch/patient", "openid", "patient/Observation.rs"}


@pytest.mark.parametrize("verifier", ["missing", "blank", "wrong", "challenge"])
def test_bad_pkce_verifier_is_invalid_grant(smart, app_public, alice, verifier):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    # "challenge": a client sending the challenge itself as the verifier (what `plain` would accept)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(launch.verifier.encode()).digest()).decode().rstrip("=")
    value = {"missing": None, "blank": "", "wrong": pkce()[0], "challenge": challenge}[verifier]
    r = smart.exchange(app_public, launch, code_verifier=value) if value is not None else \
        smart.token(app_public, {"grant_type": "authorization_code", "code": launch.code,
                                 "redirect_uri": app_public.redirect_uri})
    assert r.status_code == 400 and r.json["error"] == "invalid_grant", r.json


def test_code_works_once_and_a_second_use_revokes_the_first_tokens(smart, app_public, alice):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    first = smart.exchange(app_public, launch)
    assert first.status_code == 200
    second = smart.exchange(app_public, launch)
    assert second.status_code == 400 and second.json["error"] == "invalid_grant"
    fhir = smart.fhir(first.json["access_token"])
    assert fhir.get(f"Patient/{alice.patient_id}").status_code == 401
    refresh = smart.token(app_public, {"grant_type": "refresh_token", "refresh_token": first.json["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json["error"] == "invalid_grant"


def test_code_expires(smart, app_public, alice, db_session):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    db_session.execute(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    r = smart.exchange(app_public, launch)
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"


def test_code_lives_about_a_minute(smart, app_public, alice, db_session):
    smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    row = db_session.scalars(select(AuthorizationCode)).all()[-1]
    assert timedelta(seconds=30) <= row.expires_at - utcnow() <= timedelta(seconds=60)


def test_code_is_bound_to_client_and_redirect_uri(smart, app_public, alice):
    other = smart.register(kind="none")
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = smart.exchange(other, launch)
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = smart.exchange(app_public, launch, redirect_uri="https://app.example.org/other")
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"


def test_confidential_client_with_basic_secret(smart, alice):
    app = smart.register(kind="client_secret_basic")
    launch = smart.launch(app, SCOPE, "alice", patient=alice.patient_id)
    wrong = smart.exchange(type(app)(app.client_id, "not-the-secret"), launch)
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_client"
    launch = smart.launch(app, SCOPE, "alice", patient=alice.patient_id)
    no_secret = smart.exchange(type(app)(app.client_id), launch)
    assert no_secret.status_code == 401 and no_secret.json["error"] == "invalid_client"
    launch = smart.launch(app, SCOPE, "alice", patient=alice.patient_id)
    ok = smart.exchange(app, launch)
    assert ok.status_code == 200 and ok.json["patient"] == alice.patient_id


def test_confidential_asymmetric_client_authorization_code(smart, alice, rs384):
    app = smart.register(kind="private_key_jwt", jwks={"keys": [rs384.public_jwk]})
    launch = smart.launch(app, SCOPE, "alice", patient=alice.patient_id)
    data = {"grant_type": "authorization_code", "code": launch.code, "redirect_uri": app.redirect_uri,
            "code_verifier": launch.verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": rs384.assertion(app.client_id)}
    r = smart.token(None, data)
    assert r.status_code == 200, r.json
    assert r.json["patient"] == alice.patient_id


def test_unsupported_grant_type(smart, app_public):
    r = smart.token(app_public, {"grant_type": "password", "username": "alice", "password": "x"})
    assert r.status_code == 400 and r.json["error"] == "unsupported_grant_type"


def test_every_token_grant_is_audited(smart, app_public, alice, db_session):
    smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    rows = db_session.scalars(select(AuditLog).where(AuditLog.action == "token")).all()
    assert len(rows) == 1
    assert rows[0].profile_id == alice.patient_id and rows[0].actor_id == alice.user_id
    assert rows[0].client_id == app_public.client_id and rows[0].details["grant_type"] == "authorization_code"
