"""Allergy <-> AllergyIntolerance (hl7.org/fhir/R4/allergyintolerance.html).

isActive -> clinicalStatus active/inactive; severity -> reaction[0].severity and criticality
(severe -> high, else low); reaction -> reaction[0].manifestation text; substance -> code (SNOMED CT or
RxNorm when known, with category). verificationStatus is "unconfirmed": a PHR entry is the patient's own
report, not a clinician's verification (allergyintolerance-verification: "unconfirmed" = not verified).
"""

from __future__ import annotations

from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .native import date_value, fhir_datetime, patient_reference, profile_pointer, prune
from .terminology import ALLERGENS, codeable, concept_text, first_code

RESOURCE_TYPE = "AllergyIntolerance"
CLASS_NAME = "Allergy"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

# clinicalStatus codes (required binding allergyintolerance-clinical) -> isActive.
CLINICAL_ACTIVE = {"active": True, "inactive": False, "resolved": False}
CRITICALITY = {"severe": "high", "moderate": "low", "mild": "low"}
# Only used when no reaction carries a severity: "high" criticality means a severe reaction is likely.
SEVERITY_FROM_CRITICALITY = {"high": "severe"}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "clinicalStatus": ("isActive",),
    "verificationStatus": (),
    "category": ("substance",),
    "criticality": ("severity",),
    "code": ("substance",),
    "patient": ("profile",),
    "onset[x]": ("onsetDate",),
    "recordedDate": ("recordedAt",),
    "note": ("notes",),
    "reaction": ("reaction", "severity"),
}


def _status(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": CLINICAL, "code": code, "display": display}]}


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if record.get("isActive") is not None:
        body["clinicalStatus"] = (
            _status("active", "Active") if record["isActive"] else _status("inactive", "Inactive")
        )
    body["verificationStatus"] = {
        "coding": [{"system": VERIFICATION, "code": "unconfirmed", "display": "Unconfirmed"}]
    }
    concept = ALLERGENS.lookup(record.get("substance"))
    if concept is not None:
        body["category"] = [concept.extra["category"]]
    if record.get("severity") in CRITICALITY:
        body["criticality"] = CRITICALITY[record["severity"]]
    code = codeable(record.get("substance"), concept)
    if code:
        body["code"] = code
    if patient_reference(record):
        body["patient"] = patient_reference(record)
    if record.get("onsetDate"):
        body["onsetDateTime"] = fhir_datetime(record["onsetDate"])
    if record.get("recordedAt"):
        body["recordedDate"] = fhir_datetime(record["recordedAt"])
    if record.get("notes"):
        body["note"] = [{"text": record["notes"]}]
    if record.get("reaction"):
        reaction: dict[str, Any] = {"manifestation": [{"text": record["reaction"]}]}
        if record.get("severity") in CRITICALITY:
            reaction["severity"] = record["severity"]
        body["reaction"] = [reaction]
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    reactions = resource.get("reaction") or []
    first = reactions[0] if reactions else {}
    severity = next((r["severity"] for r in reactions if r.get("severity")), None)
    clinical = first_code(resource.get("clinicalStatus"), CLINICAL)
    verification = first_code(resource.get("verificationStatus"), VERIFICATION)
    # entered-in-error has no clinicalStatus (ait-2); such a record is not an active allergy.
    is_active = (
        CLINICAL_ACTIVE.get(clinical) if clinical else (False if verification == "entered-in-error" else None)
    )
    return prune(
        {
            "profile": profile_pointer(resource.get("patient")),
            "substance": concept_text(resource.get("code")),
            "severity": severity or SEVERITY_FROM_CRITICALITY.get(resource.get("criticality")),
            "reaction": concept_text((first.get("manifestation") or [None])[0]),
            "notes": "\n\n".join(n["text"] for n in resource.get("note", []) if n.get("text")) or None,
            "recordedAt": date_value(resource.get("recordedDate")),
            "isActive": is_active,
            "onsetDate": date_value(resource.get("onsetDateTime")),
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Allergy -> AllergyIntolerance."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """AllergyIntolerance -> Allergy fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
