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
from typing import Any

import fhirkit

from conformance.bindings import *  # noqa: F401,F403  (re-exported for callers of validate)
from conformance.bindings import INVARIANTS, binding_problems


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
