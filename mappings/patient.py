"""Profile <-> Patient (hl7.org/fhir/R4/patient.html), and Profile.bloodType <-> an Observation.

Patient carries fullName (name), birthDate, gender, primaryCareProvider (generalPractitioner) and notes
(our extension). bloodType lives in its own Observation (LOINC 882-1, SNOMED CT value), because R4 Patient
has no blood-group element and an Observation is how EHRs exchange it; `blood_group_observation` and
`blood_type_from_observation` map it. Profile.user (the login) is account data, not FHIR data: it is never
produced by from_fhir and the store keeps it. Patient.contact is built from the profile's
EmergencyContacts when the caller passes them (see related_person.patient_contacts).
"""

from __future__ import annotations

from typing import Any

from . import extensions as ext
from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .names import full_name, human_name, pick_name
from .native import date_value, fhir_date, fhir_instant, from_reference, prune, reference
from .terminology import BLOOD_GROUPS, GENDERS, LOINC, codeable, concept_text, has_coding

RESOURCE_TYPE = "Patient"
CLASS_NAME = "Profile"
# Native fields the Patient does not carry: server fields, the login, and bloodType (its own Observation).
NATIVE_ONLY = SERVER_FIELDS + ("user", "bloodType")

ELEMENTS: dict[str, tuple[str, ...]] = {
    "name": ("fullName",),
    "birthDate": ("birthDate",),
    "gender": ("gender",),
    "generalPractitioner": ("primaryCareProvider",),
    "extension:" + ext.PROFILE_NOTES: ("notes",),
    "contact": ("emergencyContacts",),  # a pseudo column: the profile's EmergencyContacts, when given
}


def _gender(value: str | None) -> str | None:
    concept = GENDERS.lookup(value)
    # An unrecognised spelling is not a code we may send (the binding is required); "other" says the
    # patient gave a gender outside male/female without pretending to know which.
    return concept.code if concept else ("other" if value else None)


def _build(record: dict[str, Any], ctx: MappingContext, *, emergency_contacts: list | None = None) -> dict:
    from .related_person import patient_contacts  # local: related_person imports names, not us

    body: dict[str, Any] = {}
    if record.get("notes"):
        body["extension"] = [{"url": ctx.extension_url(ext.PROFILE_NOTES), "valueString": record["notes"]}]
    name = human_name(record.get("fullName"))
    if name:
        body["name"] = [name]
    if emergency_contacts:
        body["contact"] = patient_contacts(emergency_contacts, ctx)
    if _gender(record.get("gender")):
        body["gender"] = _gender(record.get("gender"))
    if record.get("birthDate"):
        body["birthDate"] = fhir_date(record["birthDate"])
    pcp = record.get("primaryCareProvider")
    if isinstance(pcp, dict):
        body["generalPractitioner"] = [reference(pcp, ctx)]
    elif pcp:
        body["generalPractitioner"] = [{"display": pcp}]
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    notes = next(
        (
            e.get("valueString")
            for e in resource.get("extension", [])
            if e.get("url") == ctx.extension_url(ext.PROFILE_NOTES)
        ),
        None,
    )
    gp = (resource.get("generalPractitioner") or [None])[0] or {}
    pcp = from_reference(gp, ctx) if gp.get("reference") else gp.get("display")
    return prune(
        {
            "fullName": full_name(pick_name(resource.get("name"))),
            "birthDate": date_value(resource.get("birthDate")),
            "gender": resource.get("gender"),
            "primaryCareProvider": pcp,
            "notes": notes,
        }
    )


def _contact_key(contacts: list[dict[str, Any]]) -> list[tuple]:
    return [(c.get("name"), c.get("relationship"), c.get("phone")) for c in contacts]


def to_fhir(
    record: dict[str, Any],
    ctx: MappingContext = DEFAULT,
    *,
    emergency_contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Profile -> Patient. `emergency_contacts` (EmergencyContact records) fill Patient.contact; None
    means "not loaded": a contact list that arrived by FHIR is then served as received."""
    from .related_person import contacts_from_patient

    elements = dict(ELEMENTS)
    if emergency_contacts is None:
        elements.pop("contact")
    return lossless.to_fhir(
        RESOURCE_TYPE,
        record,
        _build,
        _columns,
        elements,
        ctx,
        current_extra={"emergencyContacts": _contact_key(emergency_contacts or [])},
        derived_extra=lambda original: {
            "emergencyContacts": _contact_key(contacts_from_patient(original, ctx))
        },
        emergency_contacts=emergency_contacts,
    )


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Patient -> Profile fields (Patient.contact becomes EmergencyContacts: related_person.contacts_from_patient)."""
    return lossless.from_fhir(resource, _build, _columns, ctx)


# ---- blood group ---------------------------------------------------------------------------------------

BLOOD_GROUP_LOINC = "882-1"
BLOOD_GROUP_SUFFIX = "-blood-group"


def blood_group_observation_id(profile_id: str) -> str:
    """The id of a profile's blood-group Observation (a FHIR id: [A-Za-z0-9-.]{1,64})."""
    return f"{profile_id}{BLOOD_GROUP_SUFFIX}"


def profile_id_for_observation(observation_id: str) -> str | None:
    if observation_id.endswith(BLOOD_GROUP_SUFFIX):
        return observation_id[: -len(BLOOD_GROUP_SUFFIX)]
    return None


def is_blood_group_observation(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Observation" and has_coding(
        resource.get("code"), LOINC, BLOOD_GROUP_LOINC
    )


def blood_group_observation(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any] | None:
    """Profile.bloodType as an Observation (LOINC 882-1, value SNOMED CT when the group is known), or None
    when the profile has no blood type (hl7.org/fhir/R4/observation.html)."""
    blood_type = record.get("bloodType")
    if not blood_type:
        return None
    observation: dict[str, Any] = {"resourceType": "Observation"}
    if record.get("objectId"):
        observation["id"] = blood_group_observation_id(record["objectId"])
    if record.get("updatedAt"):
        observation["meta"] = {"lastUpdated": fhir_instant(record["updatedAt"])}
    observation.update(
        {
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                            "display": "Laboratory",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {
                        "system": LOINC,
                        "code": BLOOD_GROUP_LOINC,
                        "display": "ABO and Rh group [Type] in Blood",
                    }
                ],
                "text": "Blood type",
            },
        }
    )
    if record.get("objectId"):
        observation["subject"] = {"reference": f"Patient/{record['objectId']}"}
    observation["valueCodeableConcept"] = codeable(blood_type, BLOOD_GROUPS.lookup(blood_type))
    return observation


def blood_type_from_observation(resource: dict[str, Any]) -> dict[str, Any]:
    """{"objectId": profile id, "bloodType": ...} from a blood-group Observation."""
    value = resource.get("valueCodeableConcept")
    concept = BLOOD_GROUPS.from_codings((value or {}).get("coding"))
    blood_type = (value or {}).get("text") or (concept.extra["label"] if concept else concept_text(value))
    subject = (resource.get("subject") or {}).get("reference", "")
    profile_id = subject.split("/")[-1] if subject.startswith("Patient/") else None
    return prune({"objectId": profile_id, "bloodType": blood_type})


__all__ = [
    "blood_group_observation",
    "blood_group_observation_id",
    "blood_type_from_observation",
    "from_fhir",
    "is_blood_group_observation",
    "profile_id_for_observation",
    "to_fhir",
]
