"""FHIR JSON is validated strictly (R4 json.html, gateway/fhir/json_shape.py): no null, no empty object or
array, no empty string, every primitive of its own JSON type (no coercion: "1.5" is no decimal, "true" no
boolean, 5.0 no integer, 2020 no date), a Reference an object. Refused with 400 and an OperationOutcome
naming the element, on every way in: create, update, transaction and batch entries, a PATCH whose result
breaks them, `$validate`, and the importer, which skips such a resource with the reason and stores nothing of
it. A null that lines a primitive array up with its `_` array of extensions stays allowed."""
from __future__ import annotations

import copy
import json

import pytest
from sqlalchemy import func, select

from gateway.models import LabResult, Profile, Vaccination
from gateway.services.importer import Importer, parse_source
from gateway.services.users import UserService
from tests.fhir.conftest import body, load_record


def lab(ref: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}], "text": "Glucose"},
            "subject": {"reference": ref}, "effectiveDateTime": "2025-09-20",
            "valueQuantity": {"value": 98, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                              "code": "mg/dL"},
            **extra}


def immunization(ref: str, **extra) -> dict:
    return {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "MMR"},
            "patient": {"reference": ref}, "occurrenceDateTime": "2019-10-01", **extra}


def changed(resource: dict, path: str, value) -> dict:
    """A copy with the element at a dotted path (numbers index arrays) set to value."""
    out = copy.deepcopy(resource)
    node = out
    steps = [int(s) if s.isdigit() else s for s in path.split(".")]
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = value
    return out


#: (make(ref) -> a resource that breaks R4's JSON rules, the element the OperationOutcome must name)
CASES = {
    "decimal as a string": (lambda ref: changed(lab(ref), "valueQuantity.value", "1.5"),
                            "Observation.valueQuantity.value"),
    "decimal as a boolean": (lambda ref: changed(lab(ref), "valueQuantity.value", True),
                             "Observation.valueQuantity.value"),
    "null": (lambda ref: changed(lab(ref), "effectiveDateTime", None), "Observation.effectiveDateTime"),
    "empty array": (lambda ref: changed(lab(ref), "category", []), "Observation.category"),
    "empty object": (lambda ref: changed(lab(ref), "valueQuantity", {}), "Observation.valueQuantity"),
    "null in an array": (lambda ref: changed(lab(ref), "category", [None]), "Observation.category[0]"),
    "empty string": (lambda ref: changed(lab(ref), "code.text", ""), "Observation.code.text"),
    "reference as a string": (lambda ref: changed(immunization(ref), "patient", ref), "Immunization.patient"),
    "boolean as a string": (lambda ref: immunization(ref, primarySource="true"),
                            "Immunization.primarySource"),
    "integer as a float": (lambda ref: immunization(ref, protocolApplied=[{"doseNumberPositiveInt": 1.0}]),
                           "Immunization.protocolApplied[0].doseNumberPositiveInt"),
    "integer as a string": (lambda ref: immunization(ref, protocolApplied=[{"doseNumberPositiveInt": "1"}]),
                            "Immunization.protocolApplied[0].doseNumberPositiveInt"),
    "date as a number": (lambda ref: changed(lab(ref), "effectiveDateTime", 2020),
                         "Observation.effectiveDateTime"),
    "code as a number": (lambda ref: changed(lab(ref), "status", 1), "Observation.status"),
    "coding system null": (lambda ref: changed(lab(ref), "code.coding.0.system", None),
                           "Observation.code.coding[0].system"),
    "extension value of the wrong type": (
        lambda ref: lab(ref, extension=[{"url": "http://example.org/x", "valueDecimal": "2"}]),
        "Observation.extension[0].valueDecimal"),
    "primitive extension null": (lambda ref: lab(ref, _status=None), "Observation._status"),
    "NUL in a string": (lambda ref: changed(lab(ref), "code.text", "Glu\x00cose"), "Observation.code.text"),
}


@pytest.fixture
def alice(person):
    return load_record(person("alice"), family="Rutherford", given="Amelia", labs=1, vaccines=1)


def stored(who, rt: str) -> int:
    return body(who.fhir.get(rt, {"_summary": "count"}))["total"]


def assert_names(outcome: dict, element: str) -> None:
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(element in issue.get("expression", []) for issue in outcome["issue"]), outcome


@pytest.mark.parametrize("case", sorted(CASES))
def test_create_refuses_it_with_400_naming_the_element(alice, case):
    make, element = CASES[case]
    resource = make(alice.ref)
    rt = resource["resourceType"]
    before = stored(alice, rt)
    assert_names(body(alice.fhir.post(rt, resource), 400), element)
    assert stored(alice, rt) == before


@pytest.mark.parametrize("case", ["decimal as a string", "null", "empty object", "reference as a string"])
def test_update_refuses_it_and_keeps_the_resource(alice, case):
    make, element = CASES[case]
    resource = make(alice.ref)
    rt = resource["resourceType"]
    rid = alice.record[rt][0]
    current = body(alice.fhir.get(f"{rt}/{rid}"))
    assert_names(body(alice.fhir.put(f"{rt}/{rid}", {**resource, "id": rid}), 400), element)
    assert body(alice.fhir.get(f"{rt}/{rid}")) == current


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_bundle_entries_are_checked(alice, kind):
    make, element = CASES["decimal as a string"]
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": immunization(alice.ref), "request": {"method": "POST", "url": "Immunization"}},
        {"resource": make(alice.ref), "request": {"method": "POST", "url": "Observation"}}]}
    before = stored(alice, "Immunization")
    r = alice.fhir.post("", bundle)
    if kind == "transaction":  # all or nothing
        assert_names(body(r, 400), element)
        assert stored(alice, "Immunization") == before
    else:
        result = body(r)
        assert result["entry"][0]["response"]["status"].startswith("201")
        assert result["entry"][1]["response"]["status"].startswith("400")
        assert_names(result["entry"][1]["response"]["outcome"], element)


@pytest.mark.parametrize("op, element", [
    ({"op": "replace", "path": "/valueQuantity/value", "value": "98"}, "Observation.valueQuantity.value"),
    ({"op": "add", "path": "/note", "value": []}, "Observation.note"),
    ({"op": "replace", "path": "/subject", "value": "Patient/x"}, "Observation.subject"),
])
def test_a_patch_whose_result_breaks_the_rules_is_refused(alice, op, element):
    rid = alice.record["Observation"][0]
    current = body(alice.fhir.get(f"Observation/{rid}"))
    assert_names(body(alice.fhir.patch(f"Observation/{rid}", [op]), 400), element)
    assert body(alice.fhir.get(f"Observation/{rid}")) == current


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_names_the_element(alice, case):
    make, element = CASES[case]
    resource = make(alice.ref)
    outcome = body(alice.fhir.post(f"{resource['resourceType']}/$validate", resource))
    assert_names(outcome, element)


def test_primitive_arrays_may_hold_nulls_lined_up_with_their_extensions(alice):
    patient = body(alice.fhir.get(alice.ref))
    ext = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                          "valueCode": "CL"}]}
    patient["name"] = [{"family": "Rutherford", "given": ["Amelia", None], "_given": [None, ext]}]
    outcome = body(alice.fhir.post("Patient/$validate", patient))
    assert [i["severity"] for i in outcome["issue"]] == ["information"], outcome
    patient["name"] = [{"family": "Rutherford", "given": ["Amelia", None]}]  # a null lining up nothing
    assert_names(body(alice.fhir.put(alice.ref, patient), 400), "Patient.name[0].given[1]")


@pytest.mark.parametrize("case", ["decimal as a string", "reference as a string", "empty object"])
def test_the_importer_skips_it_with_the_reason_and_stores_nothing(db_session, case):
    owner = UserService(db_session).create_user("ann", "pw-123456", role="caregiver")
    make, element = CASES[case]
    p = "urn:uuid:9e2b0000-0000-4000-8000-000000000001"
    resource = make(p)
    source = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": p, "resource": {"resourceType": "Patient", "name": [{"family": "Nuñez"}]}},
        {"fullUrl": "urn:uuid:9e2b0000-0000-4000-8000-000000000002", "resource": resource}]}
    report = Importer(db_session, owner).import_source(parse_source("bad.json", json.dumps(source)))
    db_session.flush()
    ((reason, n),) = report.skipped[resource["resourceType"]].items()
    assert n == 1 and reason.startswith("invalid R4: ") and element in reason
    (pid,) = report.profiles
    model = LabResult if resource["resourceType"] == "Observation" else Vaccination
    assert db_session.scalar(select(func.count()).select_from(model).where(model.profile_id == pid)) == 0
    profiles = select(func.count()).select_from(Profile).where(Profile.user_id == owner.object_id)
    assert db_session.scalar(profiles) == 1
