"""A write grant lets a provider add records within its scope and nothing else; the record shows who wrote
it (meta.source) and the patient sees the write on her access log."""
from __future__ import annotations

import pytest

from tests.conftest import date, pointer
from tests.fhir.conftest import Fhir, body
from tests.native.conftest import VALID, ok
from tests.sharing.helpers import grant_body

LAB = {"resourceType": "Observation", "status": "final",
       "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                 "code": "laboratory"}]}],
       "code": {"text": "Glucose"}, "effectiveDateTime": "2025-09-20",
       "valueQuantity": {"value": 98, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}


@pytest.fixture
def scene(client, signup, make_profile, make_record, provider_user):
    _, alice = signup("alice")
    pid = make_profile(alice)
    other = make_profile(alice, "Alice's son")
    allergy = make_record(alice, "Allergy", pid)
    _, prov, dr = provider_user("dr.write")
    gid = ok(alice.post("/classes/SharedAccess", grant_body(pid, prov, ("labs",), "write")), 201)["objectId"]
    return {"alice": alice, "pid": pid, "other": other, "allergy": allergy, "prov": prov, "dr": dr, "gid": gid,
            "dr_fhir": Fhir(client, dr.token), "fhir": Fhir(client, alice.token), "client": client}


def test_provider_adds_a_lab_on_both_faces_and_is_shown_as_its_writer(scene, audit_count):
    s = scene
    creates = audit_count(action="create")
    native_id = ok(s["dr"].post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", s["pid"])}), 201)["objectId"]
    fhir = body(s["dr_fhir"].post("Observation", {**LAB, "subject": {"reference": f"Patient/{s['pid']}"}}), 201)
    assert audit_count(action="create") == creates + 2
    for oid in (native_id, fhir["id"]):
        seen = body(s["fhir"].get(f"Observation/{oid}"))  # the patient reads it
        assert seen["meta"]["source"].endswith(f"/Practitioner/{s['prov']}")
        assert ok(s["alice"].get(f"/classes/LabResult/{oid}"))["ACL"] == {ok(s["alice"].get("/users/me"))["objectId"]: {"read": True, "write": True}}
    # and the write is on her access log page's data
    from tests.sharing.test_pages import sign_in

    page = sign_in(s["client"], "alice").get(f"/account/profiles/{s['pid']}/audit").get_data(as_text=True)
    assert f'data-entity="LabResult/{native_id}"' in page and 'data-action="create"' in page
    assert "Dr dr.write" in page


def test_nothing_else(scene, make_record):
    s = scene
    dr, dr_fhir = s["dr"], s["dr_fhir"]
    lab = ok(dr.post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", s["pid"])}), 201)["objectId"]
    # other categories
    assert dr.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", s["pid"])}).status_code in (400, 403)
    r = dr_fhir.post("AllergyIntolerance", {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{s['pid']}"},
                                            "code": {"text": "Peanut"}, "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "severe"}],
                                            "clinicalStatus": {"coding": [{
                                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                                "code": "active"}]}})
    assert r.status_code in (403, 404), r.get_data(as_text=True)
    assert dr.put(f"/classes/Allergy/{s['allergy']}", {"notes": "x"}).status_code == 404
    # another profile of the same patient
    assert dr.post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", s["other"])}).status_code in (400, 403)
    # no deleting, not even what it wrote
    assert dr.delete(f"/classes/LabResult/{lab}").status_code == 404
    assert dr_fhir.delete(f"Observation/{lab}").status_code in (403, 404)
    # no ACL changes, no changing the grant, no new grants
    assert dr.put(f"/classes/LabResult/{lab}", {"ACL": {"*": {"read": True}}}).status_code in (400, 403)
    assert dr.put(f"/classes/SharedAccess/{s['gid']}", {"scope": ["labs", "allergies"]}).status_code == 404
    assert dr.post("/classes/SharedAccess", grant_body(s["pid"], s["prov"], ("allergies",))).status_code in (400, 403)
    assert dr.put(f"/classes/Profile/{s['pid']}", {"fullName": "Changed"}).status_code == 404
    # it may correct its own lab while the grant lasts
    ok(dr.put(f"/classes/LabResult/{lab}", {"units": "mmol/L"}))
    # and loses it the moment the grant ends
    ok(s["alice"].put(f"/classes/SharedAccess/{s['gid']}", {"revokedAt": date("2025-01-01T00:00:00.000Z")}))
    assert dr.get(f"/classes/LabResult/{lab}").status_code == 404
    assert dr.post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", s["pid"])}).status_code in (400, 403)
