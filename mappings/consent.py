"""SharedAccess <-> Consent (hl7.org/fhir/R4/consent.html).

scope patient-privacy, category LOINC 59284-0 (Patient Consent), policyRule OPTIN (R4 ppc-1 needs a policy
or policyRule), patient = the profile; one permit provision: period.end = expiresAt, actors = the grantee
user and the provider, each with role IRCP (information recipient), action access (read) plus correct
(write), class = the FHIR resource types of each scope category (DESIGN.md "Scope -> FHIR").
status is "inactive" when revoked or expired (at ctx.now), else "active"; revokedAt has no R4 element and
is our extension. createdBy -> performer (the user who agreed to the share).
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
    profile_pointer,
    prune,
    reference,
    to_instant,
)

RESOURCE_TYPE = "Consent"
CLASS_NAME = "SharedAccess"
NATIVE_ONLY = SERVER_FIELDS  # native fields the resource does not carry (id/meta)

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# Scope category -> FHIR resource types (DESIGN.md, "Who may do what").
SCOPE_CLASSES: dict[str, tuple[str, ...]] = {
    "documents": ("DocumentReference", "Binary"),
    "allergies": ("AllergyIntolerance",),
    "immunizations": ("Immunization",),
    "medications": ("MedicationStatement",),
    "labs": ("Observation",),
    "contacts": ("RelatedPerson",),
}
CLASS_SCOPE = {rt: scope for scope, types in SCOPE_CLASSES.items() for rt in types}
# accessLevel -> consent actions: reading is "access", writing also "correct".
ACCESS_ACTIONS = {"read": ("access",), "write": ("access", "correct")}

SCOPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }
    ]
}
CATEGORY = [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}]
POLICY_RULE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN", "display": "opt-in"}
    ]
}
RECIPIENT = {"coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "extension:" + ext.REVOKED_AT: ("revokedAt",),
    "status": ("_status",),  # pseudo column, see to_fhir
    "scope": (),
    "category": (),
    "patient": ("profile",),
    "performer": ("createdBy",),
    "policyRule": (),
    "provision": ("expiresAt", "grantee", "provider", "accessLevel", "scope"),
}


def _expired(record: dict[str, Any], ctx: MappingContext) -> bool:
    expires = to_instant(record.get("expiresAt"))
    return expires is not None and expires <= ctx.current_time()


def _status(record: dict[str, Any], ctx: MappingContext) -> str:
    return "inactive" if record.get("revokedAt") or _expired(record, ctx) else "active"


def _provision(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "permit"}
    if record.get("expiresAt"):
        provision["period"] = {"end": fhir_datetime(record["expiresAt"])}
    actors = [reference(record.get(key), ctx) for key in ("grantee", "provider")]
    provision["actor"] = [{"role": RECIPIENT, "reference": ref} for ref in actors if ref]
    actions = ACCESS_ACTIONS.get(record.get("accessLevel"), ())
    if actions:
        provision["action"] = [{"coding": [{"system": CONSENT_ACTION, "code": code}]} for code in actions]
    classes = [
        {"system": RESOURCE_TYPES, "code": rt}
        for scope in record.get("scope") or ()
        for rt in SCOPE_CLASSES.get(scope, ())
    ]
    if classes:
        provision["class"] = classes
    if not provision["actor"]:
        del provision["actor"]
    return provision


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if record.get("revokedAt"):
        body["extension"] = [
            {"url": ctx.extension_url(ext.REVOKED_AT), "valueDateTime": fhir_datetime(record["revokedAt"])}
        ]
    body["status"] = _status(record, ctx)
    body["scope"] = SCOPE
    body["category"] = CATEGORY
    if patient_reference(record):
        body["patient"] = patient_reference(record)
    if reference(record.get("createdBy"), ctx):
        body["performer"] = [reference(record["createdBy"], ctx)]
    body["policyRule"] = POLICY_RULE
    body["provision"] = _provision(record, ctx)
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    revoked = next(
        (
            e.get("valueDateTime")
            for e in resource.get("extension", [])
            if e.get("url") == ctx.extension_url(ext.REVOKED_AT)
        ),
        None,
    )
    provision = resource.get("provision") or {}
    pointers = [from_reference(a.get("reference"), ctx) for a in provision.get("actor", [])]
    grantee = next((p for p in pointers if p and p["className"] == "_User"), None)
    provider = next((p for p in pointers if p and p["className"] == "Provider"), None)
    codes = {c.get("code") for a in provision.get("action", []) for c in a.get("coding", ())}
    scopes: list[str] = []
    for cls in provision.get("class", []):
        scope = CLASS_SCOPE.get(cls.get("code"))
        if scope and scope not in scopes:
            scopes.append(scope)
    return prune(
        {
            "profile": profile_pointer(resource.get("patient")),
            "grantee": grantee,
            "provider": provider,
            "accessLevel": "write" if "correct" in codes else ("read" if "access" in codes else None),
            "scope": scopes,
            "expiresAt": date_value((provision.get("period") or {}).get("end")),
            "createdBy": from_reference((resource.get("performer") or [None])[0], ctx),
            "revokedAt": date_value(revoked),
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """SharedAccess -> Consent (status evaluated at ctx.now).

    Status is time-dependent, so for a Consent that arrived by FHIR the received status is kept only while
    it still agrees with the columns now (an "active" consent whose period has ended turns "inactive");
    statuses we do not derive (draft, proposed, rejected, entered-in-error) are kept as received."""
    status = _status(record, ctx)

    def received(original: dict[str, Any]) -> dict[str, Any]:
        kept = original.get("status")
        return {"_status": kept if kept in ("active", "inactive") else status}

    return lossless.to_fhir(
        RESOURCE_TYPE,
        record,
        _build,
        _columns,
        ELEMENTS,
        ctx,
        current_extra={"_status": status},
        derived_extra=received,
    )


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Consent -> SharedAccess fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
