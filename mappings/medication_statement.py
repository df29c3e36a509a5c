"""Medication <-> MedicationStatement (hl7.org/fhir/R4/medicationstatement.html).

name -> medicationCodeableConcept (RxNorm ingredient when known); active -> status active/completed;
startDate/endDate -> effectivePeriod; dose -> dosage[0].text (plus doseAndRate.doseQuantity when it reads as
"<number> <UCUM unit>"); frequency -> dosage[0].timing.code (GTS abbreviation when known, text always);
instructions -> dosage[0].patientInstruction. Dosage.text is the dose as the patient wrote it, so it reads
back exactly; the structured parts are there for systems that compute with them.
"""

from __future__ import annotations

import re
from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .native import date_value, fhir_datetime, patient_reference, profile_pointer, prune
from .terminology import MEDICATIONS, TIMINGS, UCUM, codeable, concept_text, ucum_code

RESOURCE_TYPE = "MedicationStatement"
CLASS_NAME = "Medication"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

# MedicationStatement.status (required binding medication-statement-status) -> Medication.active.
# Only "active" (and "intended": about to be taken) count as current; every other status means the
# patient is not taking it now.
STATUS_ACTIVE = {
    "active": True,
    "intended": True,
    "completed": False,
    "stopped": False,
    "on-hold": False,
    "not-taken": False,
    "entered-in-error": False,
    "unknown": None,
}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "status": ("active",),
    "medication[x]": ("name",),
    "subject": ("profile",),
    "effective[x]": ("startDate", "endDate"),
    "dosage": ("dose", "frequency", "instructions"),
}

_DOSE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(\S.*?)\s*$")


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _dosage(record: dict[str, Any]) -> dict[str, Any] | None:
    dosage: dict[str, Any] = {}
    dose, frequency, instructions = record.get("dose"), record.get("frequency"), record.get("instructions")
    if dose:
        dosage["text"] = dose
    if instructions:
        dosage["patientInstruction"] = instructions
    if frequency:
        dosage["timing"] = {"code": codeable(frequency, TIMINGS.lookup(frequency))}
    m = _DOSE.match(dose or "")
    if m and ucum_code(m[2]):
        dosage["doseAndRate"] = [
            {"doseQuantity": {"value": _number(m[1]), "unit": m[2], "system": UCUM, "code": ucum_code(m[2])}}
        ]
    return dosage or None


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {}
    active = record.get("active", True)  # the native default is true
    body["status"] = "active" if active else "completed"
    code = codeable(record.get("name"), MEDICATIONS.lookup(record.get("name")))
    if code:
        body["medicationCodeableConcept"] = code
    if patient_reference(record):
        body["subject"] = patient_reference(record)
    period = prune(
        {"start": fhir_datetime(record.get("startDate")), "end": fhir_datetime(record.get("endDate"))}
    )
    if period:
        body["effectivePeriod"] = period
    dosage = _dosage(record)
    if dosage:
        body["dosage"] = [dosage]
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    dosage = (resource.get("dosage") or [{}])[0]
    dose = dosage.get("text")
    if not dose:
        quantity = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
        if "value" in quantity:
            dose = f"{quantity['value']} {quantity.get('unit') or quantity.get('code') or ''}".strip()
    period = resource.get("effectivePeriod") or {}
    start = period.get("start") or resource.get("effectiveDateTime")
    return prune(
        {
            "profile": profile_pointer(resource.get("subject")),
            "name": concept_text(resource.get("medicationCodeableConcept")),
            "dose": dose,
            "frequency": concept_text((dosage.get("timing") or {}).get("code")),
            "instructions": dosage.get("patientInstruction"),
            "active": STATUS_ACTIVE.get(resource.get("status")),
            "startDate": date_value(start),
            "endDate": date_value(period.get("end")),
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Medication -> MedicationStatement."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """MedicationStatement -> Medication fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
