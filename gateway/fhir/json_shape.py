"""R4's JSON rules, checked before the models (hl7.org/fhir/R4/json.html):

- `null` is never a value, except inside an array of primitives to line it up with the `_name` array of
  their extensions (and the other way round);
- objects and arrays are never empty; a string is never empty (json.html: "either the property is absent,
  or it is present with at least one character of content");
- a primitive has its JSON type: boolean a JSON boolean; integer, positiveInt and unsignedInt a JSON number
  without a fraction; decimal a JSON number; every other primitive (date, dateTime, code, uri...) a JSON
  string. A complex element (a Reference, a Quantity) is an object.

The fhir.resources models validate in pydantic's lax mode, which coerces ("1.5" -> 1.5, "true" -> True,
1.0 -> 1, 2020 -> a date) and lets null, {} and [] through; a resource stored that way would be served back
invalid. This walk refuses all of that, naming each element by its FHIRPath-like location
(`Observation.valueQuantity.value`, `Patient.name[0].given[1]`), and is cheap: one pass over the JSON with
the element types of each model read once. Strings holding U+0000 are refused too (PostgreSQL's jsonb
cannot hold them: gateway/services/inputs.py)."""
from __future__ import annotations

import datetime
import decimal
import math
import types
import typing
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from gateway.services.inputs import MAX_JSON_DEPTH

#: The JSON kind of each primitive's Python type in the models.
_PRIMITIVES = {bool: "boolean", int: "integer", decimal.Decimal: "decimal", float: "decimal", str: "string",
               bytes: "string", datetime.date: "string", datetime.datetime: "string", datetime.time: "string"}
_MESSAGES = {"boolean": "must be a JSON boolean (true or false)",
             "integer": "must be a JSON number without a fraction (an integer)",
             "decimal": "must be a JSON number", "string": "must be a JSON string",
             "object": "must be a JSON object", "resource": "must be a JSON object (a resource)"}


class _Element(typing.NamedTuple):
    kind: str                   # boolean | integer | decimal | string | object | resource
    repeats: bool
    model: type | None = None   # for an object: its model


def problems(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """OperationOutcome issues for every place `resource` breaks R4's JSON rules (empty when none)."""
    issues: list[dict[str, Any]] = []
    rt = resource.get("resourceType")
    try:
        model = get_fhir_model_class(rt)
    except (KeyError, TypeError):
        return issues  # an unknown type: the caller says so
    _object(resource, model, rt, issues, 1)
    return issues


def _issue(issues: list, where: str, text: str) -> None:
    if len(issues) < 50:
        issues.append({"severity": "error", "code": "structure", "diagnostics": f"{where}: {text}",
                       "expression": [where]})


def _object(node: dict, model: type, where: str, issues: list, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        _issue(issues, where, f"nested more than {MAX_JSON_DEPTH} levels deep")
        return
    if not node:
        _issue(issues, where, "an object is never empty (R4 JSON: leave the element out)")
        return
    elements = _elements(model)
    for key, value in node.items():
        element = elements.get(key)
        if element is None:
            continue  # resourceType, or an unknown element: the model names it
        at = f"{where}.{key}"
        if not element.repeats:
            _value(value, element, at, issues, depth)
        elif type(value) is not list:
            continue  # one value where an array belongs: the model names it
        elif not value:
            _issue(issues, at, "an array is never empty (R4 JSON: leave the element out)")
        else:
            partner = node.get(key[1:] if key[0] == "_" else "_" + key)
            for i, item in enumerate(value):
                if item is None:
                    # json.html: a null only keeps a primitive and its extensions in line
                    if element.kind == "object" and key[0] != "_" or not _present(partner, i):
                        _issue(issues, f"{at}[{i}]", "null is not allowed (R4 JSON), except to line up a "
                                                     "primitive array with its _ array of extensions")
                else:
                    _value(item, element, f"{at}[{i}]", issues, depth)


def _present(partner: Any, i: int) -> bool:
    return type(partner) is list and i < len(partner) and partner[i] is not None


def _value(value: Any, element: _Element, at: str, issues: list, depth: int) -> None:
    kind = element.kind
    t = type(value)
    if value is None:
        _issue(issues, at, "null is not allowed (R4 JSON: leave the element out)")
    elif kind == "object":
        if t is dict:
            _object(value, element.model, at, issues, depth + 1)
        else:
            _issue(issues, at, _MESSAGES[kind])
    elif kind == "string":
        if t is not str:
            _issue(issues, at, _MESSAGES[kind])
        elif not value:
            _issue(issues, at, "a string is never empty (R4 JSON: leave the element out)")
        elif "\x00" in value:
            _issue(issues, at, "must not contain the NUL character")
    elif kind == "boolean":
        if t is not bool:
            _issue(issues, at, _MESSAGES[kind])
    elif kind == "integer":
        if t is not int:
            _issue(issues, at, _MESSAGES[kind])
    elif kind == "decimal":
        if t is not int and (t is not float or not math.isfinite(value)):
            _issue(issues, at, _MESSAGES[kind])
    elif t is dict and isinstance(value.get("resourceType"), str):  # a contained or Bundle entry resource
        try:
            model = get_fhir_model_class(value["resourceType"])
        except KeyError:
            return  # the model names the unknown type
        _object(value, model, at, issues, depth + 1)
    else:
        _issue(issues, at, _MESSAGES[kind])


@cache
def _elements(model: type) -> dict[str, _Element]:
    """JSON name -> what it holds, for each element of a model (once per model)."""
    out = {}
    for name, field in model.model_fields.items():
        if name == "fhir_comments":
            continue
        element = _element(field.annotation)
        if element is not None:
            out[field.alias or name] = element
    return out


def _element(annotation: Any) -> _Element | None:
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        elif origin in (list, typing.List):
            repeats, annotation = True, typing.get_args(annotation)[0]
        elif origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        else:
            break
    if annotation in _PRIMITIVES:
        return _Element(_PRIMITIVES[annotation], repeats)
    klass = getattr(annotation, "get_model_klass", None)
    if klass is None:
        return None
    model = klass()
    if model.__name__ == "Resource":
        return _Element("resource", repeats)
    return _Element("object", repeats, model)
