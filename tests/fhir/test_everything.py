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
