"""Sorting and keyset paging for FHIR searches: `_sort` keys become SQL expressions, and page links carry
the last row's key values (an opaque cursor) instead of an offset, so next/previous stay correct while
resources are added or removed (R4 search.html, 'Paging')."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, literal, or_, select

from gateway.errors import InvalidInput
from gateway.fhir.extract import MAX_DATE, MIN_DATE
from gateway.fhir.params import params_for
from gateway.fhir.search import index_alias, param_is

_HIGH_TEXT, _LOW_TEXT = "\uffff", ""
_HIGH_NUM, _LOW_NUM = 1e300, -1e300


def sort_keys(R, rt: str, sort: str | None) -> list[tuple[ColumnElement, bool]]:
    """[(expression, descending)] for `_sort`, ending with the id so the order is total."""
    keys: list[tuple[ColumnElement, bool]] = []
    for raw in (sort or "").split(","):
        raw = raw.strip()
        if not raw:
            continue
        desc = raw.startswith("-")
        code = raw.lstrip("-")
        if code == "_id":
            keys.append((R.id, desc))
            continue
        if code == "_lastUpdated":
            keys.append((R.last_updated, desc))
            continue
        param = params_for(rt).get(code)
        if param is None:
            raise InvalidInput(f"Unknown sort parameter '{code}' for {rt}")
        I = index_alias()
        column, low, high = {
            "date": (I.low, MIN_DATE, MAX_DATE), "string": (I.norm, _LOW_TEXT, _HIGH_TEXT),
            "token": (I.value, _LOW_TEXT, _HIGH_TEXT), "reference": (I.target_id, _LOW_TEXT, _HIGH_TEXT),
            "uri": (I.value, _LOW_TEXT, _HIGH_TEXT), "quantity": (I.number, _LOW_NUM, _HIGH_NUM),
            "number": (I.number, _LOW_NUM, _HIGH_NUM),
        }[param.type]
        agg = func.max(column) if desc else func.min(column)
        sub = select(agg).where(I.resource_type == rt, I.resource_id == R.id,
                                param_is(I, rt, code)).scalar_subquery()
        # Resources without a value sort last either way.
        keys.append((func.coalesce(sub, literal(low if desc else high, type_=column.type)), desc))
    keys.append((R.id, False))
    return keys


def order_by(keys: list[tuple[ColumnElement, bool]], reverse: bool = False) -> list:
    return [(expr.asc() if desc == reverse else expr.desc()) for expr, desc in keys]


def after(keys: list[tuple[ColumnElement, bool]], values: list[Any], reverse: bool = False) -> ColumnElement[bool]:
    """Rows strictly after (or, reversed, before) the row whose key values are `values`."""
    clauses = []
    for i, (expr, desc) in enumerate(keys):
        forward = desc == reverse
        value = literal(values[i], type_=expr.type)
        step = expr > value if forward else expr < value
        clauses.append(and_(*[k == literal(values[j], type_=k.type) for j, (k, _) in enumerate(keys[:i])], step))
    return or_(*clauses)


def _encode_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return {"$dt": v.astimezone(timezone.utc).isoformat()}
    return v


def _decode_value(v: Any) -> Any:
    if isinstance(v, dict) and "$dt" in v:
        return datetime.fromisoformat(v["$dt"])
    return v


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_encode_value(v) for v in values])).decode().rstrip("=")


def decode_cursor(token: str, expected: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        values = [_decode_value(v) for v in orjson.loads(raw)]
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidInput("The paging cursor is not valid.") from None
    if not isinstance(values, list) or len(values) != expected:
        raise InvalidInput("The paging cursor does not match this search.")
    return values
