"""Required value-set bindings and invariants that structural validators do not check (both accept any
well-formed code). Pure and dependency-free, so the server checks write input with it at run time and the
test-time validators (conformance/validate.py) reuse it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# ---- required bindings ------------------------------------------------------------------------------------
# resource type -> {dotted path: allowed codes}. For code elements the value must be one of them. For
# CodeableConcept elements the value is (system, codes): a coding from that system must be present and all
# codings from it must be allowed. Sources: hl7.org/fhir/R4/<resource>.html, "Terminology Bindings".
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
GENDER = {"male", "female", "other", "unknown"}
CONTACT_POINT_SYSTEM = {"phone", "fax", "email", "pager", "url", "sms", "other"}

REQUIRED_CODES: dict[str, dict[str, Any]] = {
    "AllergyIntolerance": {
        "clinicalStatus": (ALLERGY_CLINICAL, {"active", "inactive", "resolved"}),
        "verificationStatus": (
            ALLERGY_VERIFICATION,
            {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
        ),
        "type": {"allergy", "intolerance"},
        "category": {"food", "medication", "environment", "biologic"},
        "criticality": {"low", "high", "unable-to-assess"},
        "reaction.severity": {"mild", "moderate", "severe"},
    },
    "Immunization": {"status": {"completed", "entered-in-error", "not-done"}},
    "MedicationStatement": {
        "status": {
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        }
    },
    "Observation": {
        "status": {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        }
    },
    "Consent": {
        "status": {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
        "provision.type": {"deny", "permit"},
    },
    "DocumentReference": {
        "status": {"current", "superseded", "entered-in-error"},
        "docStatus": {"preliminary", "final", "amended", "entered-in-error"},
        "relatesTo.code": {"replaces", "transforms", "signs", "appends"},
    },
    "AuditEvent": {"action": {"C", "R", "U", "D", "E"}, "outcome": {"0", "4", "8", "12"}},
    "Patient": {
        "gender": GENDER,
        "telecom.system": CONTACT_POINT_SYSTEM,
        "contact.gender": GENDER,
        "contact.telecom.system": CONTACT_POINT_SYSTEM,
    },
    "RelatedPerson": {"gender": GENDER, "telecom.system": CONTACT_POINT_SYSTEM},
    "Practitioner": {"gender": GENDER, "telecom.system": CONTACT_POINT_SYSTEM},
    "Organization": {"telecom.system": CONTACT_POINT_SYSTEM},
}


def _values(node: Any, path: list[str]) -> Iterator[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
    elif isinstance(node, dict) and path[0] in node:
        value = node[path[0]]
        for item in value if isinstance(value, list) else [value]:
            yield from _values(item, path[1:])


def binding_problems(resource: dict[str, Any]) -> list[str]:
    problems = []
    for path, allowed in REQUIRED_CODES.get(resource.get("resourceType", ""), {}).items():
        for value in _values(resource, path.split(".")):
            if isinstance(allowed, tuple):
                system, codes = allowed
                codings = [c for c in (value or {}).get("coding", []) if c.get("system") == system]
                if not codings:
                    problems.append(f"binding: {path} needs a coding from {system}")
                problems += [
                    f"binding: {path} code {c.get('code')!r} is not in {system}"
                    for c in codings
                    if c.get("code") not in codes
                ]
            elif value not in allowed:
                problems.append(f"binding: {path} {value!r} is not one of {sorted(allowed)}")
    return problems


# ---- invariants -------------------------------------------------------------------------------------------


def _allergy(resource: dict[str, Any]) -> list[str]:
    # ait-1 / ait-2 (hl7.org/fhir/R4/allergyintolerance.html#invs)
    verification = {
        c.get("code")
        for c in (resource.get("verificationStatus") or {}).get("coding", [])
        if c.get("system") == ALLERGY_VERIFICATION
    }
    in_error = "entered-in-error" in verification
    if in_error and "clinicalStatus" in resource:
        return [
            "invariant: ait-2 clinicalStatus SHALL NOT be present when verificationStatus is entered-in-error"
        ]
    if not in_error and "clinicalStatus" not in resource:
        return [
            "invariant: ait-1 clinicalStatus SHALL be present unless verificationStatus is entered-in-error"
        ]
    return []


def _consent(resource: dict[str, Any]) -> list[str]:
    # ppc-1 and ppc-2 (hl7.org/fhir/R4/consent.html#invs)
    problems = []
    if not resource.get("policy") and not resource.get("policyRule"):
        problems.append("invariant: ppc-1 Consent needs policy or policyRule")
    privacy = any(c.get("code") == "patient-privacy" for c in (resource.get("scope") or {}).get("coding", []))
    if privacy and not resource.get("patient"):
        problems.append("invariant: ppc-2 a privacy Consent needs a patient")
    return problems


def _organization(resource: dict[str, Any]) -> list[str]:
    # org-1 (hl7.org/fhir/R4/organization.html#invs)
    if not resource.get("name") and not resource.get("identifier"):
        return ["invariant: org-1 Organization needs a name or an identifier"]
    return []


def _practitioner(resource: dict[str, Any]) -> list[str]:
    # Not an R4 invariant: a Practitioner with neither name nor identifier cannot be recognised by anyone.
    if not resource.get("name") and not resource.get("identifier"):
        return ["invariant: Practitioner needs a name or an identifier"]
    return []


def _related_person(resource: dict[str, Any]) -> list[str]:
    return [] if resource.get("patient") else ["invariant: RelatedPerson.patient is required (1..1)"]


def _observation(resource: dict[str, Any]) -> list[str]:
    # obs-6 (hl7.org/fhir/R4/observation.html#invs)
    if resource.get("dataAbsentReason") and any(k.startswith("value") for k in resource):
        return ["invariant: obs-6 dataAbsentReason only when there is no value[x]"]
    return []


INVARIANTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "AllergyIntolerance": _allergy,
    "Consent": _consent,
    "Organization": _organization,
    "Practitioner": _practitioner,
    "RelatedPerson": _related_person,
    "Observation": _observation,
}


# ---- the two validators -----------------------------------------------------------------------------------
