"""Vaccination <-> Immunization (hl7.org/fhir/R4/immunization.html).

status is "completed" (a PHR records vaccinations that happened); vaccineCode is CVX when the name is
known; dose -> protocolApplied.doseNumber[x]; provider (text) and performer (Provider pointer) ->
performer.actor display / reference; nextDoseDate and proofDocument have no R4 element -> our extensions.
primarySource is false: the record comes from the patient, not from the administering provider
(Immunization.primarySource: "true if the information was captured from the person who administered").
"""

from __future__ import annotations

from typing import Any

from . import extensions as ext
from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .native import (
    date_value,
    fhir_datetime,
    from_reference,
    patient_reference,
    pointer,
    profile_pointer,
    prune,
    reference,
)
from .terminology import VACCINES, codeable, concept_text

RESOURCE_TYPE = "Immunization"
CLASS_NAME = "Vaccination"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

ELEMENTS: dict[str, tuple[str, ...]] = {
    "extension:" + ext.NEXT_DOSE_DATE: ("nextDoseDate",),
    "extension:" + ext.PROOF_DOCUMENT: ("proofDocument",),
    "status": (),
    "vaccineCode": ("vaccineName",),
    "patient": ("profile",),
    "occurrence[x]": ("dateAdministered",),
    "primarySource": (),
    "lotNumber": ("lotNumber",),
    "performer": ("provider", "performer"),
    "protocolApplied": ("dose",),
}


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {}
    extensions = []
    if record.get("nextDoseDate"):
        extensions.append(
            {
                "url": ctx.extension_url(ext.NEXT_DOSE_DATE),
                "valueDateTime": fhir_datetime(record["nextDoseDate"]),
            }
        )
    if record.get("proofDocument"):
        extensions.append(
            {
                "url": ctx.extension_url(ext.PROOF_DOCUMENT),
                "valueReference": reference(record["proofDocument"], ctx),
            }
        )
    if extensions:
        body["extension"] = extensions
    body["status"] = "completed"
    code = codeable(record.get("vaccineName"), VACCINES.lookup(record.get("vaccineName")))
    if code:
        body["vaccineCode"] = code
    if patient_reference(record):
        body["patient"] = patient_reference(record)
    if record.get("dateAdministered"):
        body["occurrenceDateTime"] = fhir_datetime(record["dateAdministered"])
    body["primarySource"] = False
    if record.get("lotNumber"):
        body["lotNumber"] = record["lotNumber"]
    actor = dict(reference(record.get("performer"), ctx) or {})
    if record.get("provider"):
        actor["display"] = record["provider"]
    if actor:
        body["performer"] = [{"actor": actor}]
    dose = record.get("dose")
    if isinstance(dose, int) and not isinstance(dose, bool) and dose > 0:
        body["protocolApplied"] = [{"doseNumberPositiveInt": dose}]
    elif dose not in (None, ""):
        body["protocolApplied"] = [{"doseNumberString": str(dose)}]
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    extensions = {e.get("url"): e for e in resource.get("extension", [])}
    next_dose = extensions.get(ctx.extension_url(ext.NEXT_DOSE_DATE), {})
    proof = extensions.get(ctx.extension_url(ext.PROOF_DOCUMENT), {})
    actor = ((resource.get("performer") or [{}])[0]).get("actor") or {}
    protocol = (resource.get("protocolApplied") or [{}])[0]
    dose = protocol.get("doseNumberPositiveInt", protocol.get("doseNumberString"))
    performer = from_reference(actor, ctx) if actor.get("reference") else None
    proof_pointer = from_reference(proof.get("valueReference"), ctx)
    return prune(
        {
            "profile": profile_pointer(resource.get("patient")),
            "vaccineName": concept_text(resource.get("vaccineCode")),
            "dateAdministered": date_value(resource.get("occurrenceDateTime")),
            "dose": dose,
            "lotNumber": resource.get("lotNumber"),
            "provider": actor.get("display"),
            "performer": performer if performer and performer["className"] == "Provider" else None,
            "nextDoseDate": date_value(next_dose.get("valueDateTime")),
            "proofDocument": pointer("MedicalDocument", proof_pointer["objectId"]) if proof_pointer else None,
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Vaccination -> Immunization."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Immunization -> Vaccination fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
