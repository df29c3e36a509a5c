"""Refresh tokens: only with offline_access or online_access, rotated at every use (a rotated one coming
back ends the grant), bound to their client, narrowing only, carrying the launch context again."""
from __future__ import annotations

import pytest

SCOPE = "launch/patient openid patient/Patient.rs patient/Observation.rs patient/Immunization.rs offline_access"


@pytest.fixture
def app_public(smart):
    return smart.register(kind="none")


def refresh(smart, app, token: str, scope: str | None = None):
    data = {"grant_type": "refresh_token", "refresh_token": token}
    if scope is not None:
        data["scope"] = scope
    return smart.token(app, data)


def test_refresh_rotates_and_carries_the_context(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, app_public, t["refresh_token"])
    assert r.status_code == 200, r.json
    assert r.headers["Cache-Control"] == "no-store"
    new = r.json
    assert new["patient"] == alice.patient_id and new["need_patient_banner"] is True
    assert new["refresh_token"] != t["refresh_token"] and new["access_token"] != t["access_token"]
    assert new["expires_in"] <= 3600 and set(new["scope"].split()) == set(SCOPE.split())
    assert smart.fhir(new["access_token"]).read(f"Patient/{alice.patient_id}")
    again = refresh(smart, app_public, new["refresh_token"])
    assert again.status_code == 200


def test_a_rotated_refresh_token_coming_back_ends_the_grant(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    new = refresh(smart, app_public, t["refresh_token"]).json
    stolen = refresh(smart, app_public, t["refresh_token"])
    assert stolen.status_code == 400 and stolen.json["error"] == "invalid_grant"
    assert refresh(smart, app_public, new["refresh_token"]).status_code == 400
    assert smart.fhir(new["access_token"]).get(f"Patient/{alice.patient_id}").status_code == 401


def test_refresh_may_narrow(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, app_public, t["refresh_token"], "launch/patient patient/Observation.rs offline_access")
    assert r.status_code == 200, r.json
    assert set(r.json["scope"].split()) == {"launch/patient", "patient/Observation.rs", "offline_access"}
    fhir = smart.fhir(r.json["access_token"])
    assert fhir.get("Immunization").status_code == 403
    assert fhir.get("Observation").status_code == 200
    # narrower letters under a granted scope are narrowing too
    r2 = refresh(smart, app_public, r.json["refresh_token"], "patient/Observation.r offline_access")
    assert r2.status_code == 200, r2.json


@pytest.mark.parametrize("wider", ["patient/AllergyIntolerance.rs", "patient/Observation.cruds",
                                   "user/Observation.rs", "patient/*.rs", "system/*.rs", "nonsense"])
def test_refresh_never_widens(smart, app_public, alice, wider):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, app_public, t["refresh_token"], f"patient/Observation.rs {wider}")
    assert r.status_code == 400 and r.json["error"] == "invalid_scope"


def test_narrowing_away_offline_access_ends_refresh(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, app_public, t["refresh_token"], "patient/Observation.rs")
    assert r.status_code == 200 and "refresh_token" not in r.json


def test_refresh_token_is_bound_to_its_client(smart, app_public, alice):
    other = smart.register(kind="none")
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, other, t["refresh_token"])
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"
    assert refresh(smart, app_public, t["refresh_token"]).status_code == 200


def test_confidential_refresh_needs_the_secret(smart, alice):
    app = smart.register(kind="client_secret_basic")
    t = smart.login(app, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, type(app)(app.client_id), t["refresh_token"])
    assert r.status_code == 401 and r.json["error"] == "invalid_client"
    assert refresh(smart, app, t["refresh_token"]).status_code == 200


def test_access_token_is_not_a_refresh_token(smart, app_public, alice):
    t = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = refresh(smart, app_public, t["access_token"])
    assert r.status_code == 400 and r.json["error"] == "invalid_grant"
