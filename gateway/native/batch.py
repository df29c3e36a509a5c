"""/batch: several operations in one request, each answered on its own; `transaction: true` makes them
all-or-nothing. Sub-requests go through the same route table, principal and session as the batch."""
from __future__ import annotations

from dataclasses import replace

from gateway import audit
from gateway.errors import DomainError, InvalidInput
from gateway.native.context import NativeRequest
from gateway.native.router import Reply, match, route
from gateway.services import write_buffer

MAX_BATCH = 1000
_METHODS = ("GET", "POST", "PUT", "DELETE")


def _sub_request(req: NativeRequest, op) -> tuple:
    if not isinstance(op, dict):
        raise InvalidInput("each batch request must be an object")
    method, path, body = op.get("method"), op.get("path"), op.get("body")
    if method not in _METHODS or not isinstance(path, str):
        raise InvalidInput("a batch request needs a method (GET, POST, PUT, DELETE) and a path")
    if body is not None and not isinstance(body, dict):
        raise InvalidInput("a batch request's body must be an object")
    # Accept sub-paths with or without the mount path ("/parse/classes/X" and "/classes/X").
    for prefix in ("/parse/", "parse/"):
        if path.startswith(prefix):
            path = "/" + path[len(prefix):]
    if not path.startswith("/"):
        path = "/" + path
    path = path.split("?", 1)[0]
    if path.startswith(("/batch", "/files", "/login", "/logout")):
        raise InvalidInput(f"cannot route batch path {op.get('path')}")
    sub = replace(req, method=method, path=path, body=body if method != "GET" else None,
                  params=dict(body or {}) if method == "GET" else {}, _objects=None)
    view, kwargs = match(method, path)
    return sub, view, kwargs


@route("/batch", "POST")
def batch(req: NativeRequest) -> Reply:
    """Run the operations in order; per-operation success or error, or all-or-nothing with transaction."""
    body = req.body or {}
    ops = body.get("requests")
    if not isinstance(ops, list):
        raise InvalidInput("requests must be an array")
    if len(ops) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} requests")
    results = []
    if body.get("transaction") is True:
        # Any failure propagates: the whole request rolls back and answers that operation's error.
        # One write buffer for the whole batch: its rows go out a few statements per table at the end.
        # One interaction, audited as a FHIR transaction is: one row per action and profile.
        with req.session.begin_nested(), write_buffer.scope(req.session) as buffer:
            audit.group_writes(buffer, "native")
            for op in ops:
                sub, view, kwargs = _sub_request(req, op)
                results.append({"success": view(sub, **kwargs).body})
        return Reply(results)
    for op in ops:
        savepoint = req.session.begin_nested()
        try:
            sub, view, kwargs = _sub_request(req, op)
            reply = view(sub, **kwargs)
            savepoint.commit()
            results.append({"success": reply.body})
        except DomainError as e:
            savepoint.rollback()
            results.append({"error": {"code": e.parse_code, "error": e.message}})
    return Reply(results)
