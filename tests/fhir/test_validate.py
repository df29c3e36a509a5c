"""$validate (hl7.org/fhir/R4/resource-operation-validate.html): the resource, or a Parameters wrapping it,
checked as write input would be; the answer is an OperationOutcome and nothing is stored."""
from __future__ import annotations

from sqlalchemy import func, select

from gateway.models import FhirResource
from tests.fhir import synthea
from tests.fhir.conftest import body, outcome


def test_valid_resource(alice, db_session):
    before = db_session.scalar(select(func.count()).select_from(FhirResource))
    oo = body(alice.fhir.post("Observation/$validate", synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1))))
    assert oo["resourceType"] == "OperationOutcome" and oo["issue"][0]["severity"] == "information"
    assert db_session.scalar(select(func.count()).select_from(FhirResource)) == before


def test_invalid_resource(alice):
    bad = synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1))
    bad["status"] = "nonsense"
    del bad["code"]
    oo = body(alice.fhir.post("Observation/$validate", bad))
    assert oo["resourceType"] == "OperationOutcome"
    assert all(i["severity"] == "error" for i in oo["issue"]) and len(oo["issue"]) >= 2


def test_parameters_wrapper_and_wrong_type(alice):
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": synthea.patient("Doe", "Jane")}]}
    assert body(alice.fhir.post("Patient/$validate", params))["issue"][0]["severity"] == "information"
    wrong = body(alice.fhir.post("Patient/$validate", synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1))))
    assert wrong["issue"][0]["severity"] == "error"


def test_validate_needs_auth_and_json(anonymous, alice):
    outcome(anonymous.post("Patient/$validate", synthea.patient("A", "B")), 401)
    outcome(alice.fhir.post("Patient/$validate", data=b"{not json"), 400)
