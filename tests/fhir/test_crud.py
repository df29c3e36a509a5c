"""read, vread, create, update (and update-as-create), delete then 410, Prefer, Location / ETag /
Last-Modified; one truth between the native API and the FHIR face, both ways."""
from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import body, outcome, pointer


def test_create_then_read_with_headers(alice):
    obs = synthea.lab(alice.ref, 1, synthea.date(2024, 6, 1))
    r = alice.fhir.post("Observation", obs)
    created = body(r, 201)
    rid = created["id"]
    assert r.headers["Location"].endswith(f"/fhir/Observation/{rid}/_history/1")
    assert r.headers["ETag"] == 'W/"1"'
    assert parsedate_to_datetime(r.headers["Last-Modified"])
    assert created["meta"]["versionId"] == "1"
    r = alice.fhir.get(f"Observation/{rid}")
    read = body(r)
    assert r.headers["ETag"] == 'W/"1"'
    assert {k: v for k, v in read.items() if k not in ("id", "meta")} == obs  # reads back unchanged


def test_create_ignores_a_client_id(alice):
    obs = dict(synthea.lab(alice.ref, 0, synthea.date(2024, 6, 1)), id="clientid00")
    assert alice.fhir.create(obs)["id"] != "clientid00"


@pytest.mark.parametrize("prefer, expect", [("return=minimal", None), ("return=representation", "Observation"),
                                             ("return=OperationOutcome", "OperationOutcome")])
def test_prefer_return(alice, prefer, expect):
    r = alice.fhir.post("Observation", synthea.lab(alice.ref, 0, synthea.date(2024, 1, 5)), headers={"Prefer": prefer})
    assert r.status_code == 201 and r.headers["Location"]
    if expect is None:
        assert r.get_data() == b""
    else:
        assert body(r, 201)["resourceType"] == expect


def test_update_bumps_version_and_vread_keeps_both(alice):
    rid = alice.record["Observation"][0]
    current = alice.fhir.read(f"Observation/{rid}")
    current["valueQuantity"]["value"] = 77.0
    r = alice.fhir.put(f"Observation/{rid}", current)
    updated = body(r)
    assert r.headers["ETag"] == 'W/"2"' and updated["meta"]["versionId"] == "2"
    assert body(alice.fhir.get(f"Observation/{rid}/_history/2"))["valueQuantity"]["value"] == 77.0
    assert body(alice.fhir.get(f"Observation/{rid}/_history/1"))["valueQuantity"]["value"] != 77.0
    outcome(alice.fhir.get(f"Observation/{rid}/_history/9"), 404)


def test_update_as_create_with_a_client_chosen_id(alice):
    obs = dict(synthea.lab(alice.ref, 2, synthea.date(2024, 2, 2)), id="ClientId01")
    r = alice.fhir.put("Observation/ClientId01", obs)
    assert body(r, 201)["id"] == "ClientId01"
    assert body(alice.fhir.put("Observation/ClientId01", obs))["meta"]["versionId"] == "2"
    outcome(alice.fhir.put("Observation/bad-id", dict(obs, id="bad-id")), 422)


def test_delete_then_gone_and_native_agrees(alice):
    rid = alice.record["Immunization"][0]
    r = alice.fhir.delete(f"Immunization/{rid}")
    assert r.status_code == 204
    outcome(alice.fhir.get(f"Immunization/{rid}"), 410)
    assert alice.fhir.delete(f"Immunization/{rid}").status_code == 204  # idempotent (R4 http.html#delete)
    assert alice.parse.get(f"/classes/Vaccination/{rid}").status_code == 404
    assert rid not in [e["resource"]["id"] for e in alice.fhir.search("Immunization").get("entry", [])]


def test_native_write_is_visible_through_fhir(alice):
    """A record written by the Parse API is the FHIR resource; its edit is the next FHIR version."""
    r = alice.parse.post("/classes/Allergy", {"profile": pointer("Profile", alice.patient_id), "substance": "Latex",
                                              "severity": "moderate", "reaction": "Rash"})
    oid = r.json["objectId"]
    res = alice.fhir.read(f"AllergyIntolerance/{oid}")
    assert res["code"]["text"] == "Latex" and res["patient"]["reference"] == alice.ref
    alice.parse.put(f"/classes/Allergy/{oid}", {"isActive": False})
    res = alice.fhir.read(f"AllergyIntolerance/{oid}")
    assert res["meta"]["versionId"] == "2"
    assert res["clinicalStatus"]["coding"][0]["code"] == "inactive"
    alice.parse.delete(f"/classes/Allergy/{oid}")
    outcome(alice.fhir.get(f"AllergyIntolerance/{oid}"), 410)


def test_fhir_write_is_visible_natively(alice):
    med = synthea.medication(alice.ref, 1, synthea.date(2023, 3, 1))
    rid = alice.fhir.create(med)["id"]
    native = alice.parse.get(f"/classes/Medication/{rid}").json
    assert native["name"] == "Lisinopril" and native["profile"]["objectId"] == alice.patient_id
    patient = alice.fhir.read(alice.ref)
    patient["birthDate"] = "1970-05-18"
    alice.fhir.put(alice.ref, patient)
    assert alice.parse.get(f"/classes/Profile/{alice.patient_id}").json["birthDate"]["iso"].startswith("1970-05-18")


def test_others_see_nothing(alice, bob):
    for rt, rids in alice.record.items():
        outcome(bob.fhir.get(f"{rt}/{rids[0]}"), 404)
        outcome(bob.fhir.delete(f"{rt}/{rids[0]}"), 404)
    assert body(bob.fhir.get("Observation"))["total"] == 2


def test_summary_and_elements_on_read(alice):
    res = body(alice.fhir.get(alice.ref, {"_elements": "name"}))
    assert set(res) == {"resourceType", "id", "meta", "name"}
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])
    summary = body(alice.fhir.get(f"Observation/{alice.record['Observation'][0]}", {"_summary": "true"}))
    assert "code" in summary and "valueQuantity" in summary and "category" not in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])


def test_provider_user_creates_its_own_practitioner(client, make_user):
    """A provider account may describe itself through FHIR; the new Provider is linked to its login."""
    uid, doc = make_user("dr-self", role="provider")
    r = client.post("/fhir/Practitioner", headers={"X-Parse-Session-Token": doc.token},
                    json={"resourceType": "Practitioner", "name": [{"family": "Self", "given": ["Dana"]}]})
    assert r.status_code == 201, r.json
    native = client.get(f"/parse/classes/Provider/{r.json['id']}",
                        headers={"X-Parse-Application-Id": "test-app", "X-Parse-Session-Token": doc.token})
    assert native.json["user"]["objectId"] == uid


def test_an_allergy_without_reaction_is_stored_and_reads_back_unchanged(alice):
    """Valid R4 with no reaction (as EHRs and Synthea write them) is kept, not refused."""
    allergy = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]},
        "type": "allergy", "category": ["food"],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91935009", "display": "Allergy to peanut"}],
                 "text": "Allergy to peanut"},
        "patient": {"reference": alice.ref},
        "recordedDate": "2019-03-02T10:00:00+00:00",
    }
    created = body(alice.fhir.post("AllergyIntolerance", allergy), 201)
    read = body(alice.fhir.get(f"AllergyIntolerance/{created['id']}"))
    assert {k: v for k, v in read.items() if k not in ("id", "meta")} == allergy
