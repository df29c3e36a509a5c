"""LabResult <-> Observation, category laboratory (hl7.org/fhir/R4/observation.html).

testName -> code (LOINC when the name and unit match a row, see codes/lab_tests.csv); a number ->
valueQuantity (UCUM system/code when the unit is a known UCUM unit; `unit` keeps the spelling the patient
used), text -> valueString; referenceRange text is kept and parsed into low/high when it reads as
"70-99", "<200", "<= 5.6" or ">40"; date -> effectiveDateTime; attachment -> derivedFrom DocumentReference.
The blood-group Observation of a Profile is made in patient.py, not here.
"""

from __future__ import annotations

import re
from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .native import (
    date_value,
    fhir_datetime,
    from_reference,
    patient_reference,
    profile_pointer,
    prune,
    reference,
)
from .terminology import LAB_TESTS, UCUM, Concept, codeable, concept_text, ucum_code

RESOURCE_TYPE = "Observation"
CLASS_NAME = "LabResult"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

LABORATORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
            "display": "Laboratory",
        }
    ]
}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "status": (),
    "category": (),
    "code": ("testName", "units"),
    "subject": ("profile",),
    "effective[x]": ("date",),
    "value[x]": ("value", "units"),
    "referenceRange": ("referenceRange", "units"),
    "derivedFrom": ("attachment",),
}

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_BETWEEN = re.compile(rf"^\s*{_NUMBER}\s*(?:-|–|to)\s*{_NUMBER}\s*$")
_BOUND = re.compile(rf"^\s*(<=?|≤|>=?|≥)\s*{_NUMBER}\s*$")


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _lab_concept(test_name: str | None, units: str | None) -> Concept | None:
    """The LOINC row for a test name whose unit agrees with the result's unit (a code carries its unit)."""
    unit = ucum_code(units) if units else None
    for concept in LAB_TESTS.candidates(test_name):
        if (unit and concept.extra["unit"] == unit) or (not units and concept.extra["default"] == "1"):
            return concept
    return None


def _quantity(value: float, units: str | None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if units:
        quantity["unit"] = units
        code = ucum_code(units)
        if code:
            quantity["system"] = UCUM
            quantity["code"] = code
    return quantity


def reference_range(text: str | None, units: str | None) -> dict[str, Any] | None:
    """An Observation.referenceRange for a range as people write it; `text` keeps the original."""
    if not text:
        return None
    result: dict[str, Any] = {}
    between, bound = _BETWEEN.match(text), _BOUND.match(text)
    if between:
        result["low"] = _quantity(_number(between[1]), units)
        result["high"] = _quantity(_number(between[2]), units)
    elif bound:
        # A strict "<200" still bounds the range at 200; the exact wording stays in `text`.
        result["high" if bound[1] in ("<", "<=", "≤") else "low"] = _quantity(_number(bound[2]), units)
    result["text"] = text
    return result


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "final", "category": [LABORATORY]}
    units = record.get("units")
    code = codeable(record.get("testName"), _lab_concept(record.get("testName"), units))
    if code:
        body["code"] = code
    if patient_reference(record):
        body["subject"] = patient_reference(record)
    if record.get("date"):
        body["effectiveDateTime"] = fhir_datetime(record["date"])
    value = record.get("value")
    if isinstance(value, bool):  # JSON true/false is not a lab number; keep it readable
        body["valueString"] = str(value).lower()
    elif isinstance(value, (int, float)):
        body["valueQuantity"] = _quantity(value, units)
    elif value not in (None, ""):
        body["valueString"] = str(value)
    rng = reference_range(record.get("referenceRange"), units)
    if rng:
        body["referenceRange"] = [rng]
    if record.get("attachment"):
        body["derivedFrom"] = [reference(record["attachment"], ctx)]
    return body


def _range_text(rng: dict[str, Any]) -> str | None:
    if rng.get("text"):
        return rng["text"]
    low, high = (rng.get("low") or {}).get("value"), (rng.get("high") or {}).get("value")
    if low is not None and high is not None:
        return f"{low}-{high}"
    if high is not None:
        return f"<={high}"
    return f">={low}" if low is not None else None


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    quantity = resource.get("valueQuantity") or {}
    value = quantity.get("value", resource.get("valueString"))
    ranges = resource.get("referenceRange") or []
    derived = [from_reference(r, ctx) for r in resource.get("derivedFrom", [])]
    attachment = next((p for p in derived if p and p["className"] == "MedicalDocument"), None)
    return prune(
        {
            "profile": profile_pointer(resource.get("subject")),
            "testName": concept_text(resource.get("code")),
            "value": value,
            "units": quantity.get("unit") or quantity.get("code"),
            "referenceRange": _range_text(ranges[0]) if ranges else None,
            "date": date_value(
                resource.get("effectiveDateTime")
                or (resource.get("effectivePeriod") or {}).get("start")
                or resource.get("effectiveInstant")
            ),
            "attachment": attachment,
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """LabResult -> Observation."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Observation (laboratory) -> LabResult fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
