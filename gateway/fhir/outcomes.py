"""OperationOutcome: the one error format of the FHIR face, made in one place; the HTTP status follows
from the error (hl7.org/fhir/R4/operationoutcome.html, http.html)."""
from __future__ import annotations

from typing import Any

from gateway.errors import DomainError

FHIR_JSON = "application/fhir+json"


def outcome(severity: str, code: str, diagnostics: str, expression: list[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def from_error(e: DomainError) -> tuple[dict[str, Any], int]:
    issues = getattr(e, "issues", None)
    if issues:
        return {"resourceType": "OperationOutcome", "issue": issues}, e.fhir_status
    return outcome("error", e.fhir_code, e.message), e.fhir_status


def information(text: str) -> dict[str, Any]:
    return outcome("information", "informational", text)
