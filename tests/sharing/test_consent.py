"""Consent on FHIR and SharedAccess on the native face are one grant: creating, updating, revoking
(status inactive, a period that ended, delete) or searching either acts on the other, and access follows
at once on both faces."""
from __future__ import annotations

import pytest

from tests.conftest import date
from tests.fhir.conftest import Fhir, body, outcome
from tests.native.conftest import ok
from tests.sharing.helpers import consent, entry_ids, grant_body


@pytest.fixture
def scene(client, signup, make_profile, make_record, provider_user):
    """Alice's profile with an allergy and a lab; Dr Who (a provider login) with no access yet."""
    uid, alice = signup("alice")
    pid = make_profile(alice)
    allergy = make_record(alice, "Allergy", pid)
    lab = make_record(alice, "LabResult", pid)
    dr_uid, prov, dr = provider_user("dr.who")

    class S:
        pass

    s = S()
    s.alice, s.pid, s.allergy, s.lab, s.prov, s.dr, s.dr_uid = alice, pid, allergy, lab, prov, dr, dr_uid
    s.fhir = Fhir(client, alice.token)
    s.dr_fhir = Fhir(client, dr.token)
    return s


def dr_sees(s) -> dict[str, bool]:
    """What the provider reads of Alice's record on both faces."""
    return {
        "native_allergy": s.dr.get(f"/classes/Allergy/{s.allergy}").status_code == 200,
        "fhir_allergy": s.dr_fhir.get(f"AllergyIntolerance/{s.allergy}").status_code == 200,
        "native_lab": s.dr.get(f"/classes/LabResult/{s.lab}").status_code == 200,
        "fhir_patient": s.dr_fhir.get(f"Patient/{s.pid}").status_code == 200,
    }


def test_fhir_create_is_a_native_grant(scene, audit_count):
    s = scene
    before = audit_count(action="share")
    made = body(s.fhir.post("Consent", consent(s.pid, s.prov)), 201)
    native = ok(s.alice.get(f"/classes/SharedAccess/{made['id']}"))
    assert native["provider"]["objectId"] == s.prov and native["scope"] == ["allergies"]
    assert native["accessLevel"] == "read" and native["expiresAt"]["iso"].startswith("2099-01-01")
    assert "revokedAt" not in native
    assert audit_count(action="share") == before + 1
    assert dr_sees(s) == {"native_allergy": True, "fhir_allergy": True, "native_lab": False, "fhir_patient": True}
    # the provider finds its own grant on both faces too
    assert [g["objectId"] for g in ok(s.dr.get("/classes/SharedAccess"))["results"]] == [made["id"]]
    assert entry_ids(body(s.dr_fhir.get("Consent"))) == {made["id"]}


def test_native_grant_is_a_fhir_consent(scene):
    s = scene
    gid = ok(s.alice.post("/classes/SharedAccess", grant_body(s.pid, s.prov, ("allergies", "labs"), "write")), 201)["objectId"]
    c = body(s.fhir.get(f"Consent/{gid}"))
    assert c["status"] == "active" and c["patient"]["reference"] == f"Patient/{s.pid}"
    assert {x["code"] for x in c["provision"]["class"]} == {"AllergyIntolerance", "Observation"}
    assert {x["coding"][0]["code"] for x in c["provision"]["action"]} == {"access", "correct"}
    assert c["provision"]["actor"][0]["reference"] == {"reference": f"Practitioner/{s.prov}"}
    for params in ({"patient": f"Patient/{s.pid}"}, {"status": "active"}, {"actor": f"Practitioner/{s.prov}"}):
        assert entry_ids(body(s.fhir.get("Consent", params))) == {gid}, params
    assert entry_ids(body(s.fhir.get("Consent", {"status": "inactive"}))) == set()


@pytest.mark.parametrize("how", ["status-inactive", "period-ended", "delete"])
def test_fhir_revocation_ends_the_native_grant(scene, audit_count, how):
    s = scene
    made = body(s.fhir.post("Consent", consent(s.pid, s.prov)), 201)
    assert dr_sees(s)["native_allergy"]
    revokes = audit_count(action="revoke")
    if how == "delete":
        assert s.fhir.delete(f"Consent/{made['id']}").status_code in (200, 204)
        assert s.alice.get(f"/classes/SharedAccess/{made['id']}").status_code == 404
        assert s.fhir.get(f"Consent/{made['id']}").status_code == 410
    else:
        changed = {**made, "status": "inactive"} if how == "status-inactive" else \
            {**made, "provision": {**made["provision"], "period": {"end": "2021-01-01T00:00:00Z"}}}
        updated = body(s.fhir.put(f"Consent/{made['id']}", changed))
        assert updated["status"] == "inactive"
        native = ok(s.alice.get(f"/classes/SharedAccess/{made['id']}"))
        if how == "status-inactive":
            assert native["revokedAt"]["iso"]
            assert audit_count(action="revoke") == revokes + 1
        else:
            assert native["expiresAt"]["iso"].startswith("2021-01-01") and "revokedAt" not in native
        assert entry_ids(body(s.fhir.get("Consent", {"status": "inactive"}))) == {made["id"]}
    if how != "period-ended":
        assert audit_count(action="revoke") == revokes + 1
    assert dr_sees(s) == dict.fromkeys(("native_allergy", "fhir_allergy", "native_lab", "fhir_patient"), False)
    assert ok(s.dr.get("/classes/Allergy"))["results"] == []
    assert entry_ids(body(s.dr_fhir.get("AllergyIntolerance"))) == set()


def test_native_revocation_shows_on_fhir(scene):
    s = scene
    gid = ok(s.alice.post("/classes/SharedAccess", grant_body(s.pid, s.prov)), 201)["objectId"]
    ok(s.alice.put(f"/classes/SharedAccess/{gid}", {"revokedAt": date("2025-06-01T00:00:00.000Z")}))
    c = body(s.fhir.get(f"Consent/{gid}"))
    assert c["status"] == "inactive"
    assert entry_ids(body(s.fhir.get("Consent", {"status": "inactive"}))) == {gid}
    assert entry_ids(body(s.fhir.get("Consent", {"status": "active"}))) == set()
    ok(s.alice.delete(f"/classes/SharedAccess/{gid}"))
    assert s.fhir.get(f"Consent/{gid}").status_code == 410
    assert entry_ids(body(s.fhir.get("Consent"))) == set()


def test_native_expiry_shows_on_fhir(scene):
    s = scene
    gid = ok(s.alice.post("/classes/SharedAccess", grant_body(s.pid, s.prov, expiresAt=date("2021-01-01"))), 201)["objectId"]
    assert body(s.fhir.get(f"Consent/{gid}"))["status"] == "inactive"
    assert not any(dr_sees(s).values())


def test_fhir_update_changes_the_scope(scene):
    s = scene
    made = body(s.fhir.post("Consent", consent(s.pid, s.prov)), 201)
    made["provision"]["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]
    body(s.fhir.put(f"Consent/{made['id']}", made))
    assert ok(s.alice.get(f"/classes/SharedAccess/{made['id']}"))["scope"] == ["labs"]
    assert dr_sees(s) == {"native_allergy": False, "fhir_allergy": False, "native_lab": True, "fhir_patient": True}


def test_native_update_changes_the_consent(scene):
    s = scene
    gid = ok(s.alice.post("/classes/SharedAccess", grant_body(s.pid, s.prov)), 201)["objectId"]
    ok(s.alice.put(f"/classes/SharedAccess/{gid}", {"scope": ["labs"], "accessLevel": "write"}))
    c = body(s.fhir.get(f"Consent/{gid}"))
    assert [x["code"] for x in c["provision"]["class"]] == ["Observation"]
    assert {x["coding"][0]["code"] for x in c["provision"]["action"]} == {"access", "correct"}


@pytest.mark.parametrize("status", ["draft", "proposed"])
def test_a_consent_not_yet_agreed_is_not_stored(scene, rows, status):
    s = scene
    grants = rows("SharedAccess")
    outcome(s.fhir.post("Consent", consent(s.pid, s.prov, status=status)), 422)
    assert rows("SharedAccess") == grants
    assert not dr_sees(s)["native_allergy"]


@pytest.mark.parametrize("status", ["inactive", "rejected", "entered-in-error"])
def test_a_consent_created_not_in_force_gives_nothing(scene, status):
    s = scene
    made = body(s.fhir.post("Consent", consent(s.pid, s.prov, status=status)), 201)
    assert ok(s.alice.get(f"/classes/SharedAccess/{made['id']}"))["revokedAt"]["iso"]
    assert not any(dr_sees(s).values())


def test_only_the_owner_writes_consents(scene, signup):
    s = scene
    _, mallory = signup("mallory")
    for who in (Fhir(s.fhir.client, mallory.token), s.dr_fhir):
        r = who.post("Consent", consent(s.pid, s.prov))
        assert r.status_code in (403, 404), r.get_data(as_text=True)
    made = body(s.fhir.post("Consent", consent(s.pid, s.prov)), 201)
    r = s.dr_fhir.put(f"Consent/{made['id']}", {**made, "provision": {**made["provision"], "period": {"end": "2199-01-01T00:00:00Z"}}})
    assert r.status_code in (403, 404)
    assert s.dr_fhir.delete(f"Consent/{made['id']}").status_code in (403, 404)
    assert body(s.fhir.get(f"Consent/{made['id']}"))["status"] == "active"
