"""Root resolvers: thin adapters from GraphQL arguments to the services every face shares.

Reads go through run_query / get_object (SQL-side `where`, the access policy, batched `include`, the audit
of reads); writes through ObjectService (validation, policy, versions, FHIR view, audit). Each root field
runs in its own savepoint, so a failed mutation leaves nothing behind while the others in the same
document stand, as separate Parse requests would. Nested fields only read the dicts prepared here.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import wraps
from typing import Any

from graphql import GraphQLResolveInfo

from gateway import audit
from gateway.errors import InvalidInput, InvalidQuery, NotFound, Unauthenticated
from gateway.graphql.scalars import from_global_id, object_id_of
from gateway.graphql.where import (
    include_paths,
    native_body,
    native_where,
    selected_fields,
    selections,
    selects,
)
from gateway.schema import ClassSpec, class_spec
from gateway.services import codec
from gateway.services.query import DEFAULT_LIMIT, MAX_LIMIT, QueryArgs, get_object, include, run_query

_CURSOR_PREFIX = "arrayconnection:"


def _root(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def run(root: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        savepoint = info.context.session.begin_nested()
        try:
            out = fn(root, info, **args)
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return out

    return run


# ---- queries ----

def get(spec: ClassSpec):
    @_root
    def resolve(_root, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        req = info.context
        return get_object(req.session, req.principal, spec.name, object_id_of(id, spec.name),
                          include=include_paths(spec, info), file_url=req.file_url)

    return resolve


def find(spec: ClassSpec):
    @_root
    def resolve(_root, info: GraphQLResolveInfo, where=None, order=None, skip=None, first=None, after=None,
                last=None, before=None) -> dict[str, Any]:
        req = info.context
        native = native_where(spec, where)
        args = QueryArgs(where=native, order=",".join(order) if order else None,
                         include=include_paths(spec, info, ("edges", "node")))
        start = _count_arg("skip", skip) + (_offset(after) + 1 if after is not None else 0)
        end = max(_offset(before), start) if before is not None else None
        if first is not None:
            n = _count_arg("first", first)
            end = start + n if end is None else min(end, start + n)
        total = None
        if last is not None:
            if end is None:
                total = run_query(req.session, req.principal, spec.name,
                                  QueryArgs(where=native, limit=0, count=True)).count
                end = total
            start = max(start, end - _count_arg("last", last))
        limit = min(end - start if end is not None else DEFAULT_LIMIT, MAX_LIMIT - 1)
        args.skip, args.limit = start, limit + 1  # one more row tells whether a next page exists
        args.count = total is None and selects(info, "count")
        result = run_query(req.session, req.principal, spec.name, args, req.file_url)
        rows = result.results[:limit]
        edges = [{"cursor": _cursor(start + i), "node": node} for i, node in enumerate(rows)]
        return {
            "edges": edges,
            "count": total if total is not None else result.count,
            "pageInfo": {
                "hasNextPage": len(result.results) > limit, "hasPreviousPage": start > 0,
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    return resolve


@_root
def viewer(_root, info: GraphQLResolveInfo) -> dict[str, Any]:
    """The user of the session token (Parse's `viewer`); the master key alone has none."""
    req = info.context
    if req.user is None:
        raise Unauthenticated("Invalid session token")
    return {"sessionToken": req.session_token, "user": codec.encode(class_spec("_User"), req.user)}


# ---- accounts: the native face's /users, /login and /logout ----

def _viewer(user, token: str) -> dict[str, Any]:
    return {"sessionToken": token, "user": codec.encode(class_spec("_User"), user)}


@_root
def sign_up(_root, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
    req = info.context
    fields = input.get("fields") or {}
    users = req.users()
    user = users.create_user(fields.get("username"), fields.get("password"), email=fields.get("email"),
                             role=fields.get("role") or "patient", actor=req.principal)
    _, token = users.start_session(user, action="signup", installation_id=req.meta.get("installation_id"))
    return {"viewer": _viewer(user, token), "clientMutationId": input.get("clientMutationId")}


@_root
def log_in(_root, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
    req = info.context
    user, token = req.users().login(input["username"], input["password"],
                                    installation_id=req.meta.get("installation_id"))
    return {"viewer": _viewer(user, token), "clientMutationId": input.get("clientMutationId")}


@_root
def log_out(_root, info: GraphQLResolveInfo, input: dict[str, Any] | None = None) -> dict[str, Any]:
    req = info.context
    if req.session_token:  # as Parse Server: without a session there is nothing to end, and it is ok
        req.users().logout(req.session_token)
    return {"ok": True, "clientMutationId": (input or {}).get("clientMutationId")}


@_root
def node(_root, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    """Relay's node(id): any object by its global id."""
    from gateway.graphql.types import classes

    decoded = from_global_id(id)
    if decoded is None or decoded[0] not in classes():
        raise NotFound("Object not found.")
    spec = classes()[decoded[0]]
    req = info.context
    obj = get_object(req.session, req.principal, spec.name, decoded[1], include=include_paths(spec, info),
                     file_url=req.file_url)
    return {**obj, "className": spec.name}


# ---- mutations ----

def mutation(spec: ClassSpec, verb: str, key: str):
    @_root
    def resolve(_root, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        req = info.context
        objects = req.objects()
        paths = include_paths(spec, info, (key,))
        if verb == "create":
            written = objects.create(spec.name, native_body(spec, input.get("fields")))
            obj = _present(req, spec, written.row, paths)
        elif verb == "update":
            body = native_body(spec, input.get("fields"))
            if not body:
                raise InvalidInput("Nothing to update.")
            written = objects.update(spec.name, object_id_of(input["id"], spec.name), body)
            obj = _present(req, spec, written.row, paths)
        else:
            object_id = object_id_of(input["id"], spec.name)
            obj = {"objectId": object_id}
            wanted = {f.name.value for sel in _selected(info, key) for f in sel}
            if wanted - {"id", "objectId", "__typename"}:
                # The object as it was, read before it goes (only when more than its id is asked for).
                obj = get_object(req.session, req.principal, spec.name, object_id, include=paths,
                                 file_url=req.file_url)
            objects.delete(spec.name, object_id)
        return {key: obj, "clientMutationId": input.get("clientMutationId")}

    return resolve


def _selected(info: GraphQLResolveInfo, key: str):
    return [selected_fields([s], info) for s in selections(info, (key,))]


def _present(req, spec: ClassSpec, row, paths: list[str]) -> dict[str, Any]:
    """A written row as the native JSON, with the asked-for pointers included under the read policy."""
    obj = codec.encode(spec, row, file_url=req.file_url)
    if paths:
        touched = include(req.session, req.principal, spec, [obj], paths, req.file_url)
        audit.record_reads(req.session, req.principal, touched)
    return obj


# ---- Relay cursors: offsets, as graphql-relay's offsetToCursor writes them ----

def _cursor(offset: int) -> str:
    return base64.b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        if text.startswith(_CURSOR_PREFIX):
            value = int(text[len(_CURSOR_PREFIX):])
            if value >= 0:
                return value
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidQuery("Invalid cursor.")


def _count_arg(name: str, value: int | None) -> int:
    if value is None:
        return 0
    if value < 0:
        raise InvalidQuery(f"{name} should be a non-negative number")
    return value
