"""One world of patients, providers, grants and tokens, described as data, and what each actor may see of
it, computed from that description alone (never by asking the code under test).

Profiles: A (the owner's), C and K (a caregiver's own and her child's). Each label below is one record;
GRANTS are the SharedAccess rows (FHIR Consents) between those profiles and the providers."""
from __future__ import annotations

from dataclasses import dataclass, field

ALL = frozenset({"documents", "allergies", "immunizations", "medications", "labs", "contacts"})

#: profile label -> the actor who owns it
PROFILES = {"A": "owner", "C": "caregiver", "K": "caregiver"}
#: record label -> (profile, native class)
RECORDS = {
    "A.allergy": ("A", "Allergy"), "A.med": ("A", "Medication"), "A.lab": ("A", "LabResult"),
    "A.vax": ("A", "Vaccination"), "A.contact": ("A", "EmergencyContact"), "A.doc": ("A", "MedicalDocument"),
    "C.allergy": ("C", "Allergy"), "C.lab": ("C", "LabResult"),
    "K.allergy": ("K", "Allergy"), "K.lab": ("K", "LabResult"),
}
#: FHIR-only record label -> (profile, category): a resource made from a native record of another class. The
#: blood-group Observation is made from Profile A's bloodType: a Profile row with the category labs, so a
#: grant shows it only with labs in scope although every grant shows the Patient (gateway/access.py).
DERIVED = {"A.blood": ("A", "labs")}
#: grant label -> (profile, provider actor, scope, level, state)
GRANTS = {
    "g.active": ("A", "provider_active", ("allergies", "labs", "documents"), "read", "active"),
    "g.expired": ("A", "provider_expired", ("allergies", "labs", "documents"), "read", "expired"),
    "g.revoked": ("A", "provider_revoked", ("allergies", "labs", "documents"), "read", "revoked"),
    "g.scope": ("A", "provider_wrong_scope", ("medications",), "read", "active"),
    "g.write": ("A", "provider_write", ("labs",), "write", "active"),
    "g.kid": ("K", "provider_active", ("allergies",), "read", "active"),
}
CATEGORY = {"Allergy": "allergies", "Medication": "medications", "LabResult": "labs", "Vaccination": "immunizations",
            "EmergencyContact": "contacts", "MedicalDocument": "documents"}
FHIR_TYPE = {"Profile": "Patient", "Allergy": "AllergyIntolerance", "Medication": "MedicationStatement",
             "LabResult": "Observation", "Vaccination": "Immunization", "EmergencyContact": "RelatedPerson",
             "MedicalDocument": "DocumentReference", "SharedAccess": "Consent", "BloodGroup": "Observation"}
#: a lab result's pointers (native include / FHIR _include): its profile, and A.lab's attachment
LAB_ATTACHMENT = {"A.lab": "A.doc"}
PROVIDERS = ("provider_active", "provider_expired", "provider_revoked", "provider_wrong_scope", "provider_write")
SMART_PATIENT_SCOPE = "launch/patient patient/*.rs"
SMART_USER_SCOPE = "user/Patient.rs user/Observation.rs"
SMART_SYSTEM_SCOPE = "system/*.rs"


@dataclass(frozen=True)
class Actor:
    name: str
    kind: str  # native (a user with a session), smart, master, anonymous
    #: profile -> categories this actor may read (the Patient of each listed profile is readable)
    access: dict[str, frozenset[str]] = field(default_factory=dict)
    #: FHIR types a token reaches (None: no token narrowing)
    types: frozenset[str] | None = None
    master: bool = False


def _grant_access(provider: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for profile, who, scope, _level, state in GRANTS.values():
        if who == provider and state == "active":
            out.setdefault(profile, set()).update(scope)
    return {k: frozenset(v) for k, v in out.items()}


ACTORS: dict[str, Actor] = {a.name: a for a in [
    Actor("owner", "native", {"A": ALL}),
    Actor("caregiver", "native", {"C": ALL, "K": ALL}),
    *[Actor(p, "native", _grant_access(p)) for p in PROVIDERS],
    Actor("unrelated", "native", {}),
    Actor("anonymous", "anonymous", {}),
    # the caregiver's app, opened on her child's record
    Actor("smart_patient", "smart", {"K": ALL}),
    # the active provider's clinician app, allowed to read patients and observations only
    Actor("smart_user", "smart", _grant_access("provider_active"), types=frozenset({"Patient", "Observation"})),
    # a back-end system registered for the active provider
    Actor("smart_system", "smart", _grant_access("provider_active")),
    Actor("master", "master", master=True),
]}


def grants_seen(actor: Actor) -> set[str]:
    """Grants an actor may read: those of profiles it owns, and those naming it (or its provider)."""
    if actor.master:
        return set(GRANTS)
    if actor.name == "smart_patient":  # the caregiver's token, narrowed to K's compartment
        return {g for g, (profile, *_rest) in GRANTS.items() if profile == "K"}
    if actor.name == "smart_user":
        return set()  # no Consent scope
    provider = "provider_active" if actor.name == "smart_system" else actor.name
    owned = {p for p, owner in PROFILES.items() if owner == actor.name}
    return {g for g, (profile, who, *_rest) in GRANTS.items() if profile in owned or who == provider}


def class_of(label: str) -> str:
    if label in PROFILES:
        return "Profile"
    if label in DERIVED:
        return "BloodGroup"  # no native class of its own (FHIR_TYPE names its resource type)
    if label in GRANTS:
        return "SharedAccess"
    return RECORDS[label][1]


def profile_of(label: str) -> str:
    if label in PROFILES:
        return label
    if label in DERIVED:
        return DERIVED[label][0]
    return GRANTS[label][0] if label in GRANTS else RECORDS[label][0]


def visible(actor: Actor, label: str) -> bool:
    """May `actor` read the record `label`? From the tables above only."""
    if actor.master:
        return True
    cls = class_of(label)
    if actor.types is not None and FHIR_TYPE[cls] not in actor.types:
        return False
    if cls == "SharedAccess":
        return label in grants_seen(actor)
    profile = profile_of(label)
    if profile not in actor.access:
        return False
    category = DERIVED[label][1] if label in DERIVED else CATEGORY.get(cls)
    return cls == "Profile" or category in actor.access[profile]


LABELS = [*PROFILES, *RECORDS, *DERIVED, *GRANTS]
#: What the native faces serve: everything but the FHIR-only records.
NATIVE_LABELS = [label for label in LABELS if label not in DERIVED]


def seen(actor: Actor, labels=None) -> set[str]:
    return {label for label in (LABELS if labels is None else labels) if visible(actor, label)}
