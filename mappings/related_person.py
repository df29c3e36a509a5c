"""EmergencyContact <-> RelatedPerson (hl7.org/fhir/R4/relatedperson.html), and Patient.contact.

The relationship is two CodeableConcepts: v2-0131 "C" (Emergency Contact), which says why the person is
listed, and the personal relationship as the patient wrote it (coded with v3-RoleCode when known). The
same shape serves Patient.contact.relationship (hl7.org/fhir/R4/patient-definitions.html#Patient.contact).
"""

from __future__ import annotations

from typing import Any

from . import extensions as ext
from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .names import full_name, human_name
from .native import patient_reference, pointer, profile_pointer, prune
from .terminology import RELATIONSHIPS, codeable, concept_text

RESOURCE_TYPE = "RelatedPerson"
CLASS_NAME = "EmergencyContact"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
EMERGENCY = {"coding": [{"system": V2_0131, "code": "C", "display": "Emergency Contact"}]}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "patient": ("profile",),
    "relationship": ("relationship",),
    "name": ("name",),
    "telecom": ("phone",),
    "extension:" + ext.CONTACT_NOTES: ("notes",),
}


def _relationships(relationship: str | None) -> list[dict[str, Any]]:
    personal = codeable(relationship, RELATIONSHIPS.lookup(relationship))
    return [EMERGENCY] + ([personal] if personal else [])


def _relationship_text(concepts: list[dict[str, Any]] | None) -> str | None:
    """The personal relationship: the first concept that is not just the v2-0131 role."""
    for concept in concepts or ():
        if concept.get("text") or any(c.get("system") != V2_0131 for c in concept.get("coding", ())):
            return concept_text(concept)
    # Only role codes (e.g. "C"): their display is the best text there is.
    return concept_text((concepts or [None])[0])


def _phone(telecoms: list[dict[str, Any]] | None) -> str | None:
    phones = [t for t in telecoms or () if t.get("system") == "phone"]
    return (phones or list(telecoms or ()) or [{}])[0].get("value")


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if record.get("notes"):
        body["extension"] = [{"url": ctx.extension_url(ext.CONTACT_NOTES), "valueString": record["notes"]}]
    if patient_reference(record):
        body["patient"] = patient_reference(record)
    body["relationship"] = _relationships(record.get("relationship"))
    name = human_name(record.get("name"))
    if name:
        body["name"] = [name]
    if record.get("phone"):
        body["telecom"] = [{"system": "phone", "value": record["phone"]}]
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    notes = next(
        (
            e.get("valueString")
            for e in resource.get("extension", [])
            if e.get("url") == ctx.extension_url(ext.CONTACT_NOTES)
        ),
        None,
    )
    return prune(
        {
            "profile": profile_pointer(resource.get("patient")),
            "name": full_name((resource.get("name") or [None])[0]),
            "relationship": _relationship_text(resource.get("relationship")),
            "phone": _phone(resource.get("telecom")),
            "notes": notes,
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """EmergencyContact -> RelatedPerson."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """RelatedPerson -> EmergencyContact fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)


def patient_contacts(contacts: list[dict[str, Any]], ctx: MappingContext = DEFAULT) -> list[dict[str, Any]]:
    """Patient.contact entries for a profile's EmergencyContacts (relationship C + the personal one)."""
    result = []
    for contact in contacts:
        entry: dict[str, Any] = {"relationship": _relationships(contact.get("relationship"))}
        name = human_name(contact.get("name"))
        if name:
            entry["name"] = name
        if contact.get("phone"):
            entry["telecom"] = [{"system": "phone", "value": contact["phone"]}]
        result.append(entry)
    return result


def contacts_from_patient(patient: dict[str, Any], ctx: MappingContext = DEFAULT) -> list[dict[str, Any]]:
    """EmergencyContact records (without objectId) for a Patient's contacts, e.g. on import."""
    profile = pointer("Profile", patient["id"]) if patient.get("id") else None
    return [
        prune(
            {
                "profile": profile,
                "name": full_name(contact.get("name")),
                "relationship": _relationship_text(contact.get("relationship")),
                "phone": _phone(contact.get("telecom")),
            }
        )
        for contact in patient.get("contact", [])
    ]
