"""_include and _revinclude (with :iterate), under the access policy (hl7.org/fhir/R4/search.html#include)."""
from __future__ import annotations

from tests.fhir import synthea
from tests.fhir.conftest import ids, outcome, refs


def test_include_subject(alice):
    found = alice.fhir.search("Observation", {"code": "2339-0", "_include": "Observation:subject"})
    assert refs(found, "match") == [f"Observation/{alice.record['Observation'][0]}"]
    assert refs(found, "include") == [alice.ref]
    assert found["total"] == 1  # includes are not counted
    wildcard = alice.fhir.search("Observation", {"code": "2339-0", "_include": "*"})
    assert refs(wildcard, "include") == [alice.ref]
    typed = alice.fhir.search("Observation", {"code": "2339-0", "_include": "Observation:subject:Patient"})
    assert refs(typed, "include") == [alice.ref]
    assert refs(alice.fhir.search("Observation", {"code": "2339-0", "_include": "Observation:performer:Organization"}),
                "include") == []


def test_revinclude(alice):
    found = alice.fhir.search("Patient", {"_id": alice.patient_id, "_revinclude": ["Observation:subject",
                                                                                   "Immunization:patient"]})
    assert ids(found) == [alice.patient_id]
    included = refs(found, "include")
    assert sorted(included) == sorted([f"Observation/{i}" for i in alice.record["Observation"]] +
                                      [f"Immunization/{i}" for i in alice.record["Immunization"]])


def test_iterate(alice):
    """From one lab: its Patient (_include), then everything else pointing at that Patient
    (_revinclude:iterate), without repeating the lab."""
    lab = alice.record["Observation"][0]
    found = alice.fhir.search("Observation", [("_id", lab), ("_include", "Observation:patient"),
                                              ("_revinclude:iterate", "AllergyIntolerance:patient"),
                                              ("_revinclude:iterate", "Observation:patient")])
    included = refs(found, "include")
    assert alice.ref in included
    assert f"AllergyIntolerance/{alice.record['AllergyIntolerance'][0]}" in included
    assert sorted(i for i in included if i.startswith("Observation/")) == sorted(
        f"Observation/{i}" for i in alice.record["Observation"][1:])
    assert len(included) == len(set(included))
    # without :iterate the second step does not run
    plain = alice.fhir.search("Observation", [("_id", lab), ("_include", "Observation:patient"),
                                              ("_revinclude", "AllergyIntolerance:patient")])
    assert refs(plain, "include") == [alice.ref]


def test_includes_respect_access(alice, bob, client):
    """Bob's lab pointing at Alice's Patient must not pull her Patient (or her labs) into his results."""
    from tests.fhir.conftest import Fhir

    master = Fhir(client, master=True)
    mine = bob.record["Observation"][0]
    cur = master.read(f"Observation/{mine}")
    cur["hasMember"] = [{"reference": f"Observation/{alice.record['Observation'][0]}"}]
    master.put(f"Observation/{mine}", cur)
    found = bob.fhir.search("Observation", {"_id": mine, "_include": "Observation:has-member"})
    assert refs(found, "include") == []
    found = bob.fhir.search("Patient", {"_revinclude": "Observation:subject"})
    assert all(alice.patient_id not in r for r in refs(found))


def test_bad_include(alice):
    outcome(alice.fhir.get("Observation", {"_include": "Observation"}), 400)
    outcome(alice.fhir.get("Observation", {"_include": "Observation:nonsense"}), 400)
    outcome(alice.fhir.get("Patient", {"_revinclude": "Nope:subject"}), 400)
    assert synthea
