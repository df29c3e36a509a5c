"""Query parameters in Parse's forms: strings from a query string, or JSON values from an SDK body."""
from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidInput, InvalidQuery
from gateway.services.inputs import check_depth
from gateway.services.query import DEFAULT_LIMIT, QueryArgs

QUERY_PARAMS = {
    "where", "order", "limit", "skip", "count", "keys", "excludeKeys", "include", "readPreference",
    "includeReadPreference", "subqueryReadPreference", "hint", "explain", "comment", "redirectClassNameForKey",
}

MAX_PAGE_NUMBER = 2**31 - 1


def _int(name: str, value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidQuery(f"{name} must be a non-negative integer") from None
    if number < 0 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidQuery(f"{name} must be a non-negative integer")
    if number > MAX_PAGE_NUMBER:  # beyond any result set, and beyond what the databases' integers hold
        raise InvalidQuery(f"{name} must be at most {MAX_PAGE_NUMBER}")
    return number


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    raise InvalidQuery("keys, excludeKeys and include must be comma-separated strings")


def where_of(params: dict[str, Any]) -> dict[str, Any]:
    where = params.get("where")
    if where is None or where == "":
        return {}
    if isinstance(where, str):
        try:
            where = orjson.loads(where)
        except orjson.JSONDecodeError:
            raise InvalidInput("where parameter is not valid JSON") from None
    check_depth(where, "where")
    if not isinstance(where, dict):
        raise InvalidQuery("where must be a JSON object")
    return where


def query_args(params: dict[str, Any]) -> QueryArgs:
    unknown = sorted(set(params) - QUERY_PARAMS)
    if unknown:
        raise InvalidQuery(f"Invalid parameter for query: {unknown[0]}")
    count = params.get("count")
    order = params.get("order")
    if order is not None and not isinstance(order, str):
        raise InvalidQuery("order must be a comma-separated string")
    return QueryArgs(
        where=where_of(params),
        order=order,
        limit=_int("limit", params.get("limit"), DEFAULT_LIMIT),
        skip=_int("skip", params.get("skip"), 0),
        count=count in (1, True, "1", "true"),
        keys=_list(params.get("keys")),
        exclude_keys=_list(params.get("excludeKeys")),
        include=_list(params.get("include")) or [],
    )


def get_args(params: dict[str, Any]) -> tuple[list[str], list[str] | None]:
    return _list(params.get("include")) or [], _list(params.get("keys"))
