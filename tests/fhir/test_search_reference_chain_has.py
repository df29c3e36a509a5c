"""Reference search (Type/id, id, absolute URL, :Type), :missing, chained parameters through
patient/subject, and _has (hl7.org/fhir/R4/search.html#reference, #chaining, #has); every hop under the
access policy."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import ids, outcome


@pytest.mark.parametrize("form", ["{ref}", "{pid}", "http://testserver/fhir/{ref}"])
def test_reference_forms(alice, bob, form):
    value = form.format(ref=alice.ref, pid=alice.patient_id)
    assert sorted(ids(alice.fhir.search("Observation", {"subject": value}))) == sorted(alice.record["Observation"])
    assert sorted(ids(alice.fhir.search("Observation", {"patient": value}))) == sorted(alice.record["Observation"])
    assert ids(bob.fhir.search("Observation", {"subject": value})) == []


def test_type_modifier(alice):
    assert len(ids(alice.fhir.search("Observation", {"subject:Patient": alice.patient_id}))) == 4
    assert ids(alice.fhir.search("Observation", {"subject:Organization": alice.patient_id})) == []
    assert ids(alice.fhir.search("Observation", {"subject:Patient": f"Organization/{alice.patient_id}"})) == []
    assert len(ids(alice.fhir.search("Immunization", {"patient": alice.ref}))) == 2
    assert len(ids(alice.fhir.search("AllergyIntolerance", {"patient": alice.ref}))) == 1
    outcome(alice.fhir.get("Observation", {"subject:below": alice.ref}), 400)


def test_missing(alice):
    imm = alice.record["Immunization"][0]
    cur = alice.fhir.read(f"Immunization/{imm}")
    cur["lotNumber"] = "EW0182"
    alice.fhir.put(f"Immunization/{imm}", cur)
    assert ids(alice.fhir.search("Immunization", {"lot-number:missing": "false"})) == [imm]
    assert ids(alice.fhir.search("Immunization", {"lot-number:missing": "true"})) == [alice.record["Immunization"][1]]
    assert len(ids(alice.fhir.search("Observation", {"subject:missing": "false"}))) == 4
    assert ids(alice.fhir.search("Observation", {"subject:missing": "true"})) == []
    outcome(alice.fhir.get("Observation", {"subject:missing": "maybe"}), 400)


def test_chains(alice, bob):
    all_obs = sorted(alice.record["Observation"])
    assert sorted(ids(alice.fhir.search("Observation", {"subject.name": "amelia"}))) == all_obs
    assert sorted(ids(alice.fhir.search("Observation", {"patient.family": "Rutherford"}))) == all_obs
    assert sorted(ids(alice.fhir.search("Observation", {"subject:Patient.identifier": "MRN-ALICE"}))) == all_obs
    birth = alice.fhir.read(alice.ref)["birthDate"]
    assert len(ids(alice.fhir.search("Immunization", {"patient.birthdate": birth}))) == 2
    assert len(ids(alice.fhir.search("Observation", {"subject.family:exact": "Rutherford"}))) == 4
    assert ids(alice.fhir.search("Observation", {"subject.family:exact": "rutherford"})) == []
    assert len(ids(alice.fhir.search("Observation", {"subject:Patient.family:contains": "therf"}))) == 4
    assert ids(alice.fhir.search("Observation", {"subject.name": "nobody"})) == []
    # the chain never reaches what the caller may not read
    assert ids(bob.fhir.search("Observation", {"subject.name": "amelia"})) == []
    assert sorted(ids(bob.fhir.search("Observation", {"subject.name": "ben"}))) == sorted(bob.record["Observation"])
    outcome(alice.fhir.get("Observation", {"status.name": "x"}), 400)


def test_has(alice, bob):
    assert ids(alice.fhir.search("Patient", {"_has:Observation:subject:code": "2339-0"})) == [alice.patient_id]
    assert ids(alice.fhir.search("Patient", {"_has:Observation:subject:code": "9999-9"})) == []
    assert ids(alice.fhir.search("Patient", {"_has:AllergyIntolerance:patient:criticality": "high"})) == [alice.patient_id]
    # Bob has glucose labs too, but only sees his own Patient
    assert ids(bob.fhir.search("Patient", {"_has:Observation:subject:code": "2339-0"})) == [bob.patient_id]
    outcome(alice.fhir.get("Patient", {"_has:Observation:subject": "x"}), 400)
    outcome(alice.fhir.get("Patient", {"_has:Nope:subject:code": "x"}), 400)


def test_native_reference_change_moves_the_index(alice):
    """A lab the native API adds is found by its subject at once (the index follows native writes)."""
    from tests.fhir.conftest import date, pointer

    r = alice.parse.post("/classes/LabResult", {"profile": pointer("Profile", alice.patient_id), "testName": "Ferritin",
                                                "value": 40, "units": "ng/mL", "date": date("2024-04-04")})
    oid = r.json["objectId"]
    assert oid in ids(alice.fhir.search("Observation", {"subject": alice.ref, "date": "2024-04-04"}))
    assert synthea
