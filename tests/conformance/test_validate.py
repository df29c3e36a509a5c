"""validate_r4: each validator catches a planted error, and every golden FHIR file is valid R4."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import conformance
from conformance.validate import binding_problems, fhirclient_problems, fhirkit_problems, validate_r4

DATA = Path(__file__).resolve().parent.parent / "data" / "mappings"
GOLDEN = sorted(DATA.glob("*/*.fhir.json"))

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "aLLeRgy001",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "unconfirmed",
            }
        ]
    },
    "criticality": "high",
    "code": {"text": "Peanut"},
    "patient": {"reference": "Patient/pRoF1le001"},
    "recordedDate": "2024-03-05",
}


def planted(**changes) -> dict:
    resource = copy.deepcopy(ALLERGY)
    for key, value in changes.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    return resource


def test_the_baseline_is_valid():
    assert validate_r4(ALLERGY) == []


@pytest.mark.parametrize("check", [fhirclient_problems, fhirkit_problems], ids=["fhirclient", "fhirkit"])
@pytest.mark.parametrize(
    "resource",
    [
        planted(patient=None),  # required element missing
        planted(recordedDate="2024-13-45"),  # malformed dateTime
        planted(unknownElement=True),  # not an R4 element
        planted(criticality=["high"]),  # wrong cardinality
    ],
    ids=["missing-patient", "bad-date", "unknown-element", "array-for-scalar"],
)
def test_each_validator_catches_structural_errors(check, resource):
    assert check(resource), f"{check.__name__} accepted a broken resource"


@pytest.mark.parametrize(
    "resource, needle",
    [
        (planted(criticality="very-high"), "criticality"),
        (
            planted(
                clinicalStatus={
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "gone",
                        }
                    ]
                }
            ),
            "clinicalStatus",
        ),
        (planted(clinicalStatus={"text": "active"}), "clinicalStatus"),
        (
            {
                "resourceType": "Immunization",
                "status": "done",
                "vaccineCode": {"text": "x"},
                "patient": {"reference": "Patient/a"},
                "occurrenceDateTime": "2020",
            },
            "status",
        ),
        (
            {
                "resourceType": "MedicationStatement",
                "status": "taking",
                "medicationCodeableConcept": {"text": "x"},
                "subject": {"reference": "Patient/a"},
            },
            "status",
        ),
        ({"resourceType": "Observation", "status": "done", "code": {"text": "x"}}, "status"),
        (
            {
                "resourceType": "Consent",
                "status": "ok",
                "scope": {"text": "x"},
                "category": [{"text": "x"}],
                "policyRule": {"text": "x"},
            },
            "status",
        ),
        (
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": "done",
                "content": [{"attachment": {"title": "x"}}],
            },
            "docStatus",
        ),
        (
            {
                "resourceType": "AuditEvent",
                "type": {"code": "rest"},
                "action": "X",
                "recorded": "2020-01-01T00:00:00Z",
                "agent": [{"requestor": True}],
                "source": {"observer": {"display": "x"}},
            },
            "action",
        ),
        ({"resourceType": "Patient", "gender": "f"}, "gender"),
        ({"resourceType": "RelatedPerson", "patient": {"reference": "Patient/a"}, "gender": "M"}, "gender"),
    ],
)
def test_required_bindings(resource, needle):
    problems = binding_problems(resource)
    assert any(needle in p for p in problems), problems
    assert any(needle in p for p in validate_r4(resource))


@pytest.mark.parametrize(
    "resource, rule",
    [
        (
            planted(
                verificationStatus={
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                            "code": "entered-in-error",
                        }
                    ]
                }
            ),
            "ait-2",
        ),
        (planted(clinicalStatus=None), "ait-1"),
        (
            {
                "resourceType": "Consent",
                "status": "active",
                "category": [{"text": "x"}],
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "patient-privacy",
                        }
                    ]
                },
            },
            "ppc-1",
        ),
        ({"resourceType": "Organization", "active": True}, "org-1"),
        ({"resourceType": "Practitioner", "active": True}, "Practitioner needs"),
    ],
)
def test_invariants(resource, rule):
    assert any(rule in p for p in validate_r4(resource))


@pytest.mark.parametrize("path", GOLDEN, ids=[f"{p.parent.name}/{p.name}" for p in GOLDEN])
def test_every_golden_fhir_file_is_valid_r4(path):
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert validate_r4(resource) == []


def test_golden_files_exist_for_every_resource():
    folders = {p.parent.name for p in GOLDEN}
    assert len(folders) >= 12
    for folder in folders:
        assert len([p for p in GOLDEN if p.parent.name == folder]) >= 5, folder


def test_structure_definitions_render_for_a_base_and_validate():
    definitions = conformance.structure_definitions("https://phr.example/fhir/")
    assert definitions
    for definition in definitions:
        assert definition["url"] == f"https://phr.example/fhir/StructureDefinition/{definition['id']}"
        assert "{{" not in json.dumps(definition)
        assert definition["kind"] == "complex-type" and definition["derivation"] == "constraint"
        assert validate_r4(definition) == []


def test_every_extension_the_mappers_use_has_a_structure_definition():
    from mappings import extensions

    ids = {d["id"] for d in conformance.structure_definitions("http://x/fhir")}
    assert set(extensions.ALL) == ids
