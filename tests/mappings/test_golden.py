"""Golden pairs, both directions, compared as parsed JSON (see golden_cases.py for the file naming)."""

from __future__ import annotations

import pytest
from golden_cases import FOLDERS, cases

from conformance.validate import validate_r4
from mappings.native import comparable

CASES = cases()
IDS = [str(c) for c in CASES]


def without_file_url(record: dict) -> dict:
    """The native File url is made by the native face from the file name; FHIR serves our Binary URL."""
    if isinstance(record.get("file"), dict):
        record = {**record, "file": {k: v for k, v in record["file"].items() if k != "url"}}
    return record


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_fhir(case, ctx):
    if case.kind == "in":
        record = case.from_fhir(case.fhir, ctx)
        assert "_fhir" in record, "an in- case must need the lossless store"
        assert case.to_fhir(record, ctx) == case.fhir
    else:
        assert case.to_fhir(case.native, ctx) == case.fhir


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_from_fhir(case, ctx):
    record = case.from_fhir(case.fhir, ctx)
    if case.kind == "in":
        record.pop("_fhir")
        assert record == case.native
    elif case.kind == "out":
        # The FHIR side also carries the caller's context (superseded status, contacts), kept in `_fhir`.
        record.pop("_fhir", None)
        assert comparable(without_file_url(record)) == comparable(without_file_url(case.expected_native()))
    else:
        assert "_fhir" not in record, f"needlessly lossy: {record.get('_fhir')}"
        # comparable(): a pointer and an included object of the same row are the same value
        assert comparable(without_file_url(record)) == comparable(without_file_url(case.expected_native()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_native_columns_validate(case, ctx):
    """Whatever the native columns hold (an in- case without its `_fhir`) is valid R4 too."""
    resource = case.to_fhir(case.native, ctx) if case.folder != "blood-group" else case.fhir
    assert validate_r4(resource) == []


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.kind == "in"], ids=[str(c) for c in CASES if c.kind == "in"]
)
def test_edit_regenerates_only_edited_elements(case, ctx):
    """A native edit after a FHIR write: edited elements come from the columns, the rest stays as received."""
    record = case.from_fhir(case.fhir, ctx)
    edits = {
        "Patient": ("fullName", "Edited Name"),
        "AllergyIntolerance": ("substance", "Edited substance"),
        "Immunization": ("vaccineName", "Edited vaccine"),
        "MedicationStatement": ("name", "Edited med"),
        "Observation": ("testName", "Edited test"),
        "DocumentReference": ("title", "Edited title"),
        "Consent": ("accessLevel", "write"),
        "RelatedPerson": ("phone", "+1 000"),
        "Practitioner": ("name", "Edited Name"),
        "Organization": ("name", "Edited Org"),
        "AuditEvent": ("summary", "Edited summary"),
    }
    field, value = edits[FOLDERS[case.folder]]
    edited = dict(record, **{field: value})
    resource = case.to_fhir(edited, ctx)
    assert comparable(case.from_fhir(resource, ctx).get(field)) == comparable(value)
    changed = {k for k in set(resource) | set(case.fhir) if resource.get(k) != case.fhir.get(k)}
    assert changed, "the edit must show"
    assert len(changed) <= 2, f"only the edited element should change, got {sorted(changed)}"
    assert validate_r4(resource) == []
