"""A grouped write's AuditEvent names each record it lists (mappings/audit_event.py `_listed`); any other
metadata is carried as it is."""
from __future__ import annotations

import pytest

from mappings import audit_event

BASE = {"objectId": "evt1", "createdAt": "2026-01-02T03:04:05.000Z", "actor": {"__type": "Pointer",
        "className": "_User", "objectId": "u1"}, "entityType": "LabResult", "entityId": "lab1",
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": "p1"}}


def named(resource: dict) -> list[str]:
    return [e["what"].get("reference") for e in resource["entity"] if "role" not in e]


def test_a_grouped_write_names_each_record_once_and_reads_back():
    listed = {"LabResult": ["lab1", "lab2"], "Allergy": ["a1"]}
    record = {**BASE, "action": "create", "metadata": {"interaction": "transaction", "entities": listed}}
    resource = audit_event.to_fhir(record)
    assert named(resource) == ["Observation/lab1", "Observation/lab2", "AllergyIntolerance/a1"]
    back = audit_event.from_fhir(resource)
    assert "_fhir" not in back and back["metadata"] == record["metadata"] and back["entityId"] == "lab1"


@pytest.mark.parametrize("metadata", [["a", "list"], "text", {"entities": ["not", "by", "class"]}, None])
def test_other_metadata_adds_no_entity(metadata):
    resource = audit_event.to_fhir({**BASE, "action": "create", "metadata": metadata})
    assert named(resource) == ["Observation/lab1"]


def test_a_read_lists_what_it_returned_in_the_metadata_only():
    record = {**BASE, "action": "read", "metadata": {"entities": {"LabResult": ["lab1", "lab2"]}}}
    assert named(audit_event.to_fhir(record)) == ["Observation/lab1"]
