"""The scalars of Parse Server's GraphQL API (Date, File, Object, Any) and its Relay global ids.

Values cross into the services in native (Parse JSON) form: a Date becomes `{"__type": "Date", "iso"}`,
a File `{"__type": "File", "name"}`, so the write path and the `where` translator see what the REST face
would have sent them.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from graphql import GraphQLError, GraphQLScalarType, ValueNode, value_from_ast_untyped
from graphql.language import ObjectValueNode, StringValueNode

from gateway.services import codec

# ---- Relay global ids: base64("ClassName:objectId"), as graphql-relay's toGlobalId makes them ----

def to_global_id(class_name: str, object_id: str) -> str:
    return base64.b64encode(f"{class_name}:{object_id}".encode()).decode()


def from_global_id(value: str) -> tuple[str, str] | None:
    """(class name, objectId) of a global id; None for anything else (then it is a plain objectId)."""
    try:
        text = base64.b64decode(value.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    class_name, sep, object_id = text.partition(":")
    if not sep or not class_name or not object_id:
        return None
    return class_name, object_id


def object_id_of(value: str, class_name: str) -> str:
    """Parse accepts either id form wherever an id is asked for ("GLOBAL_OR_OBJECT_ID")."""
    decoded = from_global_id(value)
    if decoded and decoded[0] == class_name:
        return decoded[1]
    return value


# ---- Date: an ISO 8601 string out; a string or {__type: "Date", iso} in ----

def _date_in(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and value.get("__type") == "Date":
        value = value.get("iso")
    if not isinstance(value, str):
        raise GraphQLError(f"{codec.describe(value)} is not a valid Date")
    return codec.date_json(codec.parse_iso(value))  # InvalidType (Parse 111) for a bad instant


def _date_out(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("iso")
    if isinstance(value, datetime):
        return codec.iso(value)
    if isinstance(value, str):
        return value
    raise GraphQLError(f"{value!r} is not a valid Date")


def _untyped(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


def _date_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> dict[str, str]:
    if isinstance(node, (StringValueNode, ObjectValueNode)):
        return _date_in(_untyped(node, variables))
    raise GraphQLError("Date must be an ISO 8601 string or {__type: \"Date\", iso}")


DATE = GraphQLScalarType(
    "Date", description="An instant: an ISO 8601 string (UTC, milliseconds), as Parse's Date.",
    serialize=_date_out, parse_value=_date_in, parse_literal=_date_literal,
)


# ---- File: a stored file's name (or {__type: "File", name}) in ----

def _file_in(value: Any) -> dict[str, str]:
    if isinstance(value, str) and value:
        return {"__type": "File", "name": value}
    if isinstance(value, dict) and value.get("__type") == "File" and isinstance(value.get("name"), str):
        return {"__type": "File", "name": value["name"]}
    raise GraphQLError(f"{codec.describe(value)} is not a valid File")


def _file_out(value: Any) -> str:
    return value.get("name") if isinstance(value, dict) else str(value)


FILE = GraphQLScalarType(
    "File", description="A file uploaded through /parse/files: its name, or {__type: \"File\", name}.",
    serialize=_file_out, parse_value=_file_in,
    parse_literal=lambda node, variables=None: _file_in(_untyped(node, variables)),
)


# ---- Object (a JSON object) and Any (any JSON value) ----

def _object(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    raise GraphQLError(f"{codec.describe(value)} is not a valid Object")


OBJECT = GraphQLScalarType(
    "Object", description="A JSON object.", serialize=_object, parse_value=_object,
    parse_literal=lambda node, variables=None: _object(_untyped(node, variables)),
)

ANY = GraphQLScalarType(
    "Any", description="Any JSON value.", serialize=lambda v: v, parse_value=lambda v: v,
    parse_literal=_untyped,
)
