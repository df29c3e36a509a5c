"""The native route table, shared by HTTP requests and /batch sub-requests (no HTTP round trip)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.exceptions import MethodNotAllowed, NotFound as RouteMissing
from werkzeug.routing import Map, Rule

from gateway.errors import DomainError

_map = Map(strict_slashes=False, merge_slashes=False)
_views: dict[str, Callable[..., "Reply"]] = {}


@dataclass
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Raw bytes with this content type instead of JSON (file downloads).
    raw_type: str | None = None


class NoRoute(DomainError):
    parse_code = 119
    fhir_status = 404


def route(path: str, *methods: str):
    def register(fn):
        endpoint = f"{fn.__module__}.{fn.__name__}"
        _map.add(Rule(path, endpoint=endpoint, methods=list(methods)))
        _views[endpoint] = fn
        return fn

    return register


def match(method: str, path: str) -> tuple[Callable[..., Reply], dict[str, Any]]:
    view, params, _rule = match_rule(method, path)
    return view, params


def match_rule(method: str, path: str) -> tuple[Callable[..., Reply], dict[str, Any], str]:
    """The view, its arguments and the rule that matched (`/classes/<class_name>`, for the access log)."""
    try:
        rule, params = _map.bind("parse").match(path, method=method, return_rule=True)
    except (RouteMissing, MethodNotAllowed):
        raise NoRoute(f"Cannot {method} /parse{path}") from None
    return _views[rule.endpoint], params, rule.rule
