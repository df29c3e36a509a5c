"""Patient/[id]/$everything with _since, _type and paging (hl7.org/fhir/R4/patient-operation-everything.html)."""
from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.fhir import synthea
from tests.fhir.conftest import body, link, outcome, refs


def expected(p) -> set[str]:
    return {f"{rt}/{i}" for rt, rids in p.record.items() for i in rids}


def clinical(found: list[str]) -> set[str]:
    """The record without its AuditEvents (the R4 Patient compartment holds those too: the import's
    create events are there)."""
    return {r for r in found if not r.startswith("AuditEvent/")}


def test_everything(alice, bob):
    bundle = body(alice.fhir.get(f"{alice.ref}/$everything"))
    assert bundle["type"] == "searchset"
    assert clinical(refs(bundle)) == expected(alice)
    assert refs(bundle)[0] == alice.ref
    assert any(r.startswith("AuditEvent/") for r in refs(bundle))
    outcome(bob.fhir.get(f"{alice.ref}/$everything"), 404)
    assert clinical(refs(body(bob.fhir.get(f"{bob.ref}/$everything")))) == expected(bob)


def test_everything_type_filter(alice):
    only = body(alice.fhir.get(f"{alice.ref}/$everything", {"_type": "Observation,Immunization"}))
    assert {r.split("/")[0] for r in refs(only)} == {"Observation", "Immunization"}
    assert len(refs(only)) == 6


def test_everything_since(alice):
    time.sleep(0.01)
    mark = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    rid = alice.record["Observation"][1]
    cur = alice.fhir.read(f"Observation/{rid}")
    cur["status"] = "amended"
    alice.fhir.put(f"Observation/{rid}", cur)
    since = body(alice.fhir.get(f"{alice.ref}/$everything", {"_since": mark}))
    assert f"Observation/{rid}" in refs(since)
    assert not {r for r in refs(since) if r.startswith("Immunization/")}


def test_everything_pages(alice):
    page = body(alice.fhir.get(f"{alice.ref}/$everything", {"_count": "3"}))
    seen = refs(page)
    while link(page, "next"):
        page = alice.fhir.follow(link(page, "next"))
        seen += refs(page)
    assert len(seen) == len(set(seen))
    assert clinical(seen) == expected(alice)
    assert synthea


def test_the_same_callers_everything_of_two_patients_and_after_a_new_record(person):
    """The first page is one prepared statement per caller, run with the patient's id: each patient gets
    its own compartment, and a record added since is there the next time."""
    from tests.fhir.conftest import load_record

    owner = person("twopatients")
    first = dict(load_record(owner, family="One", given="First", mrn="MRN-ONE").record)
    first_ref = f"Patient/{owner.patient_id}"
    second = load_record(owner, family="Two", given="Second", labs=1, vaccines=0, mrn="MRN-TWO", seed=3)
    second_ref = f"Patient/{second.patient_id}"
    for ref, record in ((first_ref, first), (second_ref, second.record), (first_ref, first)):
        found = refs(body(owner.fhir.get(f"{ref}/$everything")))
        assert found[0] == ref
        assert clinical(found) == {f"{rt}/{i}" for rt, rids in record.items() for i in rids}
    lab = synthea.lab(f"Patient/{second.patient_id}", 9, datetime(2024, 5, 1).date())
    lab["subject"] = {"reference": second_ref}
    new = body(owner.fhir.post("/Observation", lab), 201)
    assert f"Observation/{new['id']}" in refs(body(owner.fhir.get(f"{second_ref}/$everything")))
