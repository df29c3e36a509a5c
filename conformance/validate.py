"""R4 validation for every resource the gateway produces or accepts: `validate_r4(resource) -> problems`.

Two independent validators plus our own binding checks:

1. the PyPI `fhirclient` R4 models in strict mode (SMART on FHIR's generated classes: structure,
   cardinality, primitive formats; `fhirclient.models.<resourcetype lower-case>.<ResourceType>`);
2. the PyPI `fhirkit-rs` package (import name `fhirkit`, a Rust model of all of R4: every problem with its
   path);
3. required value-set bindings and invariants neither of them checks (both accept any well-formed code):
   the tables below, each citing its spec page.

Problems are strings prefixed with the validator ("fhirclient: ...", "fhirkit: ...", "binding: ...",
"invariant: ..."); an empty list means valid.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import fhirkit

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


def fhirclient_problems(resource: dict[str, Any]) -> list[str]:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type.isalpha():
        return ["fhirclient: resourceType missing or invalid"]
    try:
        module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
        model = getattr(module, resource_type)
    except (ImportError, AttributeError):
        return [f"fhirclient: unknown resource type {resource_type!r}"]
    try:
        model(copy.deepcopy(resource), strict=True)
    except Exception as error:  # noqa: BLE001 - FHIRValidationError, TypeError, ValueError on malformed input
        lines = [
            line.strip() for line in str(error).splitlines() if line.strip() and line.strip() != "{root}:"
        ]
        return ["fhirclient: " + " ".join(lines)]
    return []


def fhirkit_problems(resource: dict[str, Any]) -> list[str]:
    try:
        issues = fhirkit.validate(resource)
    except Exception as error:  # noqa: BLE001 - fhirkit.ParseError: not a resource at all
        return [f"fhirkit: {error}"]
    return [f"fhirkit: {issue.path}: {issue.message}" for issue in issues if issue.severity == "error"]


def validate_r4(resource: dict[str, Any]) -> list[str]:
    """Problems with `resource` as FHIR R4 (empty when valid), from both validators and our checks."""
    problems = fhirclient_problems(resource) + fhirkit_problems(resource)
    problems += binding_problems(resource)
    invariant = INVARIANTS.get(resource.get("resourceType", ""))
    if invariant:
        problems += invariant(resource)
    return problems


def assert_valid_r4(resource: dict[str, Any]) -> None:
    """For tests: raise AssertionError listing the problems."""
    problems = validate_r4(resource)
    assert not problems, (
        f"{resource.get('resourceType')}/{resource.get('id')} is not valid R4:\n" + "\n".join(problems)
    )
