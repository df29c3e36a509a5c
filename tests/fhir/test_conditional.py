"""Conditional create (If-None-Exist) and conditional update (PUT [type]?criteria), If-Match / 412
(hl7.org/fhir/R4/http.html#ccreate, #cond-update, #concurrency)."""
from __future__ import annotations

from sqlalchemy import func, select

from gateway.models import Profile
from tests.fhir import synthea
from tests.fhir.conftest import body, outcome

MRN = synthea.MRN


def test_if_none_exist(alice, db_session):
    patient = synthea.patient("Rutherford", "Amelia", mrn="MRN-ALICE")
    before = db_session.scalar(select(func.count()).select_from(Profile))
    r = alice.fhir.post("Patient", patient, headers={"If-None-Exist": f"identifier={MRN}|MRN-ALICE"})
    assert body(r, 200)["id"] == alice.patient_id  # one match: nothing created
    assert db_session.scalar(select(func.count()).select_from(Profile)) == before
    r = alice.fhir.post("Patient", synthea.patient("Doe", "Jo", mrn="MRN-2"), headers={"If-None-Exist": f"identifier={MRN}|MRN-2"})
    assert body(r, 201)["id"] != alice.patient_id
    # two matches: 412
    outcome(alice.fhir.post("Patient", patient, headers={"If-None-Exist": f"identifier={MRN}|"}), 412)
    # unknown parameter in the condition: 400, nothing written
    outcome(alice.fhir.post("Patient", patient, headers={"If-None-Exist": "nonsense=1"}), 400)


def test_if_none_exist_does_not_see_other_peoples_records(alice, bob):
    """Bob's condition matching Alice's Patient must not reveal it: for him it matches nothing."""
    r = bob.fhir.post("Patient", synthea.patient("X", "Y", mrn="MRN-ALICE"),
                      headers={"If-None-Exist": f"identifier={MRN}|MRN-ALICE"})
    assert body(r, 201)["id"] != alice.patient_id


def test_conditional_update(alice):
    patient = synthea.patient("Rutherford", "Amelia", mrn="MRN-ALICE", birth="1969-12-31")
    r = alice.fhir.put("Patient", patient, params={"identifier": f"{MRN}|MRN-ALICE"})
    updated = body(r)
    assert updated["id"] == alice.patient_id and updated["birthDate"] == "1969-12-31"
    r = alice.fhir.put("Patient", synthea.patient("New", "Person", mrn="MRN-NEW"), params={"identifier": f"{MRN}|MRN-NEW"})
    assert body(r, 201)["id"] != alice.patient_id
    outcome(alice.fhir.put("Patient", patient, params={"identifier": f"{MRN}|"}), 412)
    outcome(alice.fhir.put("Patient", dict(patient, id="SomeOther1"), params={"identifier": f"{MRN}|MRN-ALICE"}), 400)


def test_if_match(alice):
    rid = alice.record["Observation"][0]
    res = alice.fhir.read(f"Observation/{rid}")
    outcome(alice.fhir.put(f"Observation/{rid}", res, headers={"If-Match": 'W/"7"'}), 412)
    r = alice.fhir.put(f"Observation/{rid}", res, headers={"If-Match": 'W/"1"'})
    assert r.headers["ETag"] == 'W/"2"'
    outcome(alice.fhir.put(f"Observation/{rid}", res, headers={"If-Match": 'W/"1"'}), 412)  # now stale
    outcome(alice.fhir.put(f"Observation/{rid}", res, headers={"If-Match": "garbage"}), 400)
