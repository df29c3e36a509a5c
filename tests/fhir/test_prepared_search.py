"""Searches are prepared once per caller and exact search (services/prepared.py): the statement is kept,
never the answer."""
from __future__ import annotations

from tests.fhir import synthea
from tests.fhir.conftest import ids


def test_the_same_search_by_two_callers_answers_each_their_own(alice, bob):
    params = {"_count": "50"}
    mine, theirs = alice.fhir.search("Observation", params), bob.fhir.search("Observation", params)
    assert sorted(ids(mine)) == sorted(alice.record["Observation"])
    assert sorted(ids(theirs)) == sorted(bob.record["Observation"])
    assert not set(ids(mine)) & set(ids(theirs))


def test_a_repeated_search_sees_new_and_deleted_resources(alice):
    params = {"patient": alice.ref, "_count": "50"}
    before = ids(alice.fhir.search("Observation", params))
    new = alice.fhir.create(synthea.lab(alice.ref, 0, synthea.date(2031, 1, 1)))["id"]
    alice.fhir.delete(f"Observation/{before[0]}")
    after = alice.fhir.search("Observation", params)
    assert sorted(ids(after)) == sorted([*before[1:], new])
    assert after["total"] == len(before)
