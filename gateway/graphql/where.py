"""Parse GraphQL arguments -> the native query language, so that queries run through run_query (SQL-side,
under the access policy) exactly as REST queries do.

- `where`: `{ field: { equalTo, notEqualTo, lessThan, ..., in, notIn, exists, matchesRegex, options,
  contains } , pointer: { have, haveNot, exists }, OR/AND/NOR: [...] }` -> `{field: {$eq, $ne, $lt, ...}}`
  (Parse Server's transformers/query.js does the same translation).
- the selection set -> the `include` paths of the pointers the client asked to see as objects, so nested
  objects load in one batched query per class and level (no N+1), through the same policy.
- field inputs -> native JSON bodies for ObjectService (pointers `{link}`, files `{file}`, ACLInput).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, GraphQLResolveInfo, InlineFragmentNode, SelectionSetNode

from gateway.errors import InvalidType
from gateway.graphql.scalars import object_id_of
from gateway.schema import ClassSpec, class_spec
from gateway.services.codec import pointer_json

_OPS = {
    "equalTo": "$eq", "notEqualTo": "$ne", "lessThan": "$lt", "lessThanOrEqualTo": "$lte",
    "greaterThan": "$gt", "greaterThanOrEqualTo": "$gte", "in": "$in", "notIn": "$nin", "exists": "$exists",
    "matchesRegex": "$regex", "options": "$options", "contains": "$all",
}
_GROUPS = {"OR": "$or", "AND": "$and", "NOR": "$nor"}


def native_where(spec: ClassSpec, where: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, constraint in (where or {}).items():
        if constraint is None:
            continue
        if key in _GROUPS:
            out[_GROUPS[key]] = [native_where(spec, w) for w in constraint]
            continue
        f = spec.fields.get(key)
        if f is not None and f.type == "Pointer":
            out[key] = _pointer_constraint(f.target, constraint)
            continue
        name = "objectId" if key == "id" else key
        ops = {}
        for op, value in constraint.items():
            if name == "objectId" and op not in ("exists",):
                value = _ids(value, spec.name)
            ops[_OPS[op]] = value
        # `id` and `objectId` may both be given: both must hold.
        if name in out:
            out.setdefault("$and", []).append({name: ops})
        else:
            out[name] = ops
    return out


def _ids(value: Any, class_name: str) -> Any:
    if isinstance(value, list):
        return [object_id_of(v, class_name) for v in value]
    return object_id_of(value, class_name) if isinstance(value, str) else value


def _pointer_constraint(target: str, constraint: dict[str, Any]) -> dict[str, Any]:
    spec = class_spec(target)
    out: dict[str, Any] = {}
    if constraint.get("have") is not None:
        out["$inQuery"] = {"className": target, "where": native_where(spec, constraint["have"])}
    if constraint.get("haveNot") is not None:
        out["$notInQuery"] = {"className": target, "where": native_where(spec, constraint["haveNot"])}
    if constraint.get("exists") is not None:
        out["$exists"] = constraint["exists"]
    return out


# ---- the selection set -> include paths ----

def selections(info: GraphQLResolveInfo, path: Iterable[str] = ()) -> list[SelectionSetNode]:
    """The selection sets found by following `path` (field names, e.g. edges.node) below this field."""
    sets = [n.selection_set for n in info.field_nodes if n.selection_set]
    for name in path:
        sets = [f.selection_set for f in selected_fields(sets, info) if f.name.value == name and f.selection_set]
    return sets


def selected_fields(sets: list[SelectionSetNode], info: GraphQLResolveInfo) -> list[FieldNode]:
    out: list[FieldNode] = []
    for s in sets:
        for sel in s.selections:
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                out.extend(selected_fields([sel.selection_set], info))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in info.fragments:
                out.extend(selected_fields([info.fragments[sel.name.value].selection_set], info))
    return out


def selects(info: GraphQLResolveInfo, name: str, path: Iterable[str] = ()) -> bool:
    return any(f.name.value == name for f in selected_fields(selections(info, path), info))


def include_paths(spec: ClassSpec, info: GraphQLResolveInfo, path: Iterable[str] = ()) -> list[str]:
    """Dotted paths of the pointer fields selected with a sub-selection, at every depth."""
    out: list[str] = []
    _collect(spec, selections(info, path), info, "", out)
    return out


def _collect(spec: ClassSpec, sets: list[SelectionSetNode], info: GraphQLResolveInfo, prefix: str,
             out: list[str]) -> None:
    by_name: dict[str, list[SelectionSetNode]] = {}
    for f in selected_fields(sets, info):
        field = spec.fields.get(f.name.value)
        if field is not None and field.type == "Pointer" and f.selection_set and class_spec(field.target):
            by_name.setdefault(f.name.value, []).append(f.selection_set)
    for name, subsets in by_name.items():
        out.append(prefix + name)
        _collect(class_spec(spec.fields[name].target), subsets, info, f"{prefix}{name}.", out)


# ---- field inputs -> a native body ----

def native_body(spec: ClassSpec, fields: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in (fields or {}).items():
        if name == "ACL":
            body["ACL"] = None if value is None else native_acl(value)
            continue
        f = spec.fields[name]
        if value is None:
            body[name] = None
        elif f.type == "Pointer":
            link = value.get("link")
            body[name] = None if link is None else pointer_json(f.target, object_id_of(link, f.target))
        elif f.type == "File":
            if value.get("unlink"):
                body[name] = None
            elif value.get("file") is not None:
                body[name] = value["file"]
            else:
                raise InvalidType(f"schema mismatch for {spec.name}.{name}; expected File but got Object")
        else:
            body[name] = value
    return body


def native_acl(value: dict[str, Any]) -> dict[str, dict[str, bool]]:
    acl: dict[str, dict[str, bool]] = {}

    def rights(entry: dict[str, Any]) -> dict[str, bool]:
        return {k: True for k in ("read", "write") if entry.get(k)}

    for entry in value.get("users") or []:
        acl[object_id_of(entry["userId"], "_User")] = rights(entry)
    for entry in value.get("roles") or []:
        acl[f"role:{entry['roleName']}"] = rights(entry)
    if value.get("public") is not None:
        acl["*"] = rights(value["public"])
    # An entry with no right grants nothing; Parse drops it.
    return {k: v for k, v in acl.items() if v}
