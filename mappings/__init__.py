"""Pure PHR <-> FHIR R4 translation (DESIGN.md "PHR -> FHIR R4"; the `_fhir` rule: lossless.py).

One module per FHIR resource, each with `to_fhir(record, ctx=DEFAULT) -> dict` and
`from_fhir(resource, ctx=DEFAULT) -> dict`. The registry below dispatches by native class name or FHIR
resource type. No Flask, no SQLAlchemy, no I/O: code tables are read once, at import, from mappings/codes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import (
    allergy_intolerance,
    audit_event,
    binary,
    consent,
    document_reference,
    immunization,
    medication_statement,
    observation,
    organization,
    patient,
    practitioner,
    related_person,
)
from .context import DEFAULT, MappingContext

# Native class -> FHIR resource types it is served as (Provider: by kind; Profile: also the blood-group
# Observation; MedicalDocument: also its file as Binary).
CLASS_TO_RESOURCE: dict[str, tuple[str, ...]] = {
    "Profile": ("Patient",),
    "Allergy": ("AllergyIntolerance",),
    "Vaccination": ("Immunization",),
    "Medication": ("MedicationStatement",),
    "LabResult": ("Observation",),
    "MedicalDocument": ("DocumentReference", "Binary"),
    "SharedAccess": ("Consent",),
    "EmergencyContact": ("RelatedPerson",),
    "Provider": ("Practitioner", "Organization"),
    "AuditLog": ("AuditEvent",),
}

# FHIR resource type -> native class (Binary is file content of a MedicalDocument, not a record).
RESOURCE_TO_CLASS: dict[str, str] = {
    "Patient": "Profile",
    "AllergyIntolerance": "Allergy",
    "Immunization": "Vaccination",
    "MedicationStatement": "Medication",
    "Observation": "LabResult",
    "DocumentReference": "MedicalDocument",
    "Consent": "SharedAccess",
    "RelatedPerson": "EmergencyContact",
    "Practitioner": "Provider",
    "Organization": "Provider",
    "AuditEvent": "AuditLog",
}

# The seed's second schema names some classes differently; they map the same way.
CLASS_ALIASES = {
    "HealthDocument": "MedicalDocument",
    "Immunization": "Vaccination",
    "Consent": "SharedAccess",
}

MODULES: dict[str, ModuleType] = {
    "Patient": patient,
    "AllergyIntolerance": allergy_intolerance,
    "Immunization": immunization,
    "MedicationStatement": medication_statement,
    "Observation": observation,
    "DocumentReference": document_reference,
    "Binary": binary,
    "Consent": consent,
    "RelatedPerson": related_person,
    "Practitioner": practitioner,
    "Organization": organization,
    "AuditEvent": audit_event,
}


def canonical_class(class_name: str) -> str:
    return CLASS_ALIASES.get(class_name, class_name)


def resource_type_for(class_name: str, record: dict[str, Any] | None = None) -> str:
    """The FHIR resource type a native record is served as (a Provider by its kind)."""
    class_name = canonical_class(class_name)
    if class_name not in CLASS_TO_RESOURCE:
        raise KeyError(f"no FHIR mapping for class {class_name!r}")
    if class_name == "Provider" and (record or {}).get("kind") == "organization":
        return "Organization"
    return CLASS_TO_RESOURCE[class_name][0]


def to_fhir(
    class_name: str, record: dict[str, Any], ctx: MappingContext = DEFAULT, **kwargs: Any
) -> dict[str, Any]:
    """Native record of `class_name` -> its FHIR resource (kwargs go to the module, e.g. superseded=True)."""
    return MODULES[resource_type_for(class_name, record)].to_fhir(record, ctx, **kwargs)


def class_for_resource(resource: dict[str, Any]) -> str:
    """The native class a FHIR resource maps to (a blood-group Observation belongs to the Profile)."""
    resource_type = resource.get("resourceType", "")
    if patient.is_blood_group_observation(resource):
        return "Profile"
    if resource_type not in RESOURCE_TO_CLASS:
        raise KeyError(f"no native class for resource type {resource_type!r}")
    return RESOURCE_TO_CLASS[resource_type]


def from_fhir(resource_type: str, resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """FHIR resource -> native record fields. A blood-group Observation gives {"objectId", "bloodType"}
    of its Profile."""
    if resource_type == "Observation" and patient.is_blood_group_observation(resource):
        return patient.blood_type_from_observation(resource)
    if resource_type not in MODULES:
        raise KeyError(f"no mapping for resource type {resource_type!r}")
    return MODULES[resource_type].from_fhir(resource, ctx)


__all__ = [
    "CLASS_ALIASES",
    "CLASS_TO_RESOURCE",
    "DEFAULT",
    "MODULES",
    "RESOURCE_TO_CLASS",
    "MappingContext",
    "canonical_class",
    "class_for_resource",
    "from_fhir",
    "resource_type_for",
    "to_fhir",
]
