"""Checking FHIR write input before it reaches the store: structure and types with the fhir.resources
models (R4B, which matches R4 for the resource types we serve), plus R4's required bindings and invariants
(conformance/bindings.py). Models validate input only, never every read (DESIGN.md, performance)."""
from __future__ import annotations

import typing
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import FhirBase
from pydantic import ValidationError

from conformance.bindings import INVARIANTS, binding_problems
from gateway.fhir import json_shape


def problems(resource: Any, expected_type: str | None = None, *, json_checked: bool = False
             ) -> list[dict[str, Any]]:
    """OperationOutcome issues for `resource` (empty when acceptable). R4's JSON rules first
    (gateway/fhir/json_shape.py): a resource that breaks them is not checked further, as the models would
    coerce its values. `json_checked`: the caller has checked them already (json_problems)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return [_issue("structure", "The body must be a FHIR resource (a JSON object with resourceType).")]
    rt = resource["resourceType"]
    if expected_type and rt != expected_type:
        return [_issue("invalid", f"Expected a {expected_type} resource, got {rt}.")]
    try:
        model = get_fhir_model_class(rt)
    except KeyError:
        return [_issue("not-supported", f"Unknown resource type {rt}.")]
    issues = [] if json_checked else json_shape.problems(resource)
    if issues:
        return issues
    try:
        model.model_validate(resource)
    except ValidationError as e:
        for err in e.errors()[:50]:
            path = _location(err["loc"])
            issues.append(_issue("structure", f"{path}: {err['msg']}", [f"{rt}{path and '.'}{path}"]))
    except (ValueError, TypeError) as e:  # pragma: no cover - model construction edge cases
        issues.append(_issue("structure", str(e)[:300]))
    for text in binding_problems(resource) + INVARIANTS.get(rt, lambda r: [])(resource):
        issues.append(_issue("code-invalid" if text.startswith("binding") else "invariant", text))
    return issues


def json_problems(resource: Any) -> list[dict[str, Any]]:
    """Issues where a resource breaks R4's JSON rules (null, {}, [], a primitive of another JSON type): the
    body is not FHIR JSON at all, which the FHIR face answers with 400 (R4 http.html: "could not be parsed
    or failed basic FHIR validation rules"); what the models or our rules refuse is 422."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return []  # problems() names that
    return json_shape.problems(resource)


def _location(loc: tuple) -> str:
    """A pydantic error location as FHIRPath-like text: name[0].given[1] (without pydantic's own steps,
    `root` and `function-...`)."""
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif step != "root" and not str(step).startswith("function"):
            out += f".{step}" if out else str(step)
    return out


def _issue(code: str, text: str, expression: list[str] | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": text}
    if expression:
        issue["expression"] = expression
    return issue


def warm_up(resource_types: typing.Iterable[str]) -> int:
    """Load the models of these resource types and of every element type they can hold, now.

    fhir.resources imports an element's model (Quantity, Reference, Dosage...) the first time a resource
    holding one is validated: in a new gunicorn worker the first Bundles spent ~20 % of their time importing
    modules (py-spy), and a worker's first ~95-resource Bundle took 310-490 ms instead of 210-265. A worker
    calls this before it serves (gateway/live/server.py). Returns the number of models loaded."""
    seen: set[type] = set()
    pending = [get_fhir_model_class(rt) for rt in resource_types]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for field in model.model_fields.values():
            annotations = [field.annotation]
            while annotations:
                annotation = annotations.pop()
                if isinstance(annotation, type) and issubclass(annotation, FhirBase) \
                        and getattr(annotation, "_model_klass", None):
                    pending.append(annotation.get_model_klass())
                annotations.extend(typing.get_args(annotation))
    return len(seen)


# ---- valid elements remembered ----
#
# fhir.resources validates every complex element (a CodeableConcept, each of its Codings, a Reference, a
# Quantity) through one Python classmethod, FhirBase.fhir_model_validator(value, model class), which builds
# the element's model; half of a resource's validation time is spent there. The answer depends on nothing
# but the element's type and value, and the values repeat: a transaction's ~95 resources name the same
# patient, the same category, a few lab codes and units. So a valid element is remembered by (type, model
# class, its JSON text), and the next equal one takes the model built for it (validation only checks; the
# models are never changed nor kept). Invalid elements are never remembered: their errors are raised as
# before. Measured on generated Bundles never seen before: 0.079 -> 0.037 ms per resource.

#: Elements remembered at most (then forgotten all at once), and the longest JSON text remembered: large
#: elements (an Attachment's data) rarely repeat and would hold memory.
ELEMENT_MEMO_SIZE = 4096
ELEMENT_MEMO_TEXT = 1024
_valid_elements: dict[tuple[type, type, bytes], Any] = {}


def _remembering(validate: typing.Callable[..., Any]) -> typing.Callable[..., Any]:
    def fhir_model_validator(cls, value, model_klass):
        if type(value) is not dict:
            return validate(cls, value, model_klass)
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON (only a caller in Python could pass one)
            return validate(cls, value, model_klass)
        if len(text) > ELEMENT_MEMO_TEXT or b"null" in text:
            # (orjson writes NaN and Infinity as null: such a value must not share a null's answer)
            return validate(cls, value, model_klass)
        key = (cls, model_klass, text)
        model = _valid_elements.get(key)
        if model is None:
            model = validate(cls, value, model_klass)
            if len(_valid_elements) >= ELEMENT_MEMO_SIZE:
                _valid_elements.clear()
            _valid_elements[key] = model
        return model

    fhir_model_validator.remembering = True
    return fhir_model_validator


def _remember_valid_elements() -> None:
    """Wrap fhir_model_validator wherever fhir_core defines it (FhirBase, and its override for
    Resource-typed elements). A fhir_core without it fails tests/fhir/test_validation_memo.py."""
    pending = [FhirBase]
    while pending:
        klass = pending.pop()
        pending.extend(klass.__subclasses__())
        defined = klass.__dict__.get("fhir_model_validator")
        if isinstance(defined, classmethod) and not getattr(defined.__func__, "remembering", False):
            klass.fhir_model_validator = classmethod(_remembering(defined.__func__))


_remember_valid_elements()
