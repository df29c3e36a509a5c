"""Parse queries in SQL: `where` (with $lt $lte $gt $gte $ne $in $nin $exists $regex $all $or $and $nor
$inQuery $notInQuery $select $dontSelect), `order`, `limit`, `skip`, `count`, `keys`, `excludeKeys` and
`include`. Every filter, including the access policy, runs in the database; nothing is filtered in Python.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, false, func, not_, or_, select, true
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gateway import access, audit, regexes
from gateway.access import Principal
from gateway.db import UTCDateTime
from gateway.errors import InvalidInput, InvalidQuery, NotFound
from gateway.schema import BUILTIN_ATTRS, ClassSpec, FieldSpec, class_spec
from gateway.services import codec
from gateway.services.inputs import refuse_nul
from gateway.services.json_sql import json_array_contains
from gateway.services.objects import spec_for
from gateway.services.prepared import prepared

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_COMPARE = {"$lt": "__lt__", "$lte": "__le__", "$gt": "__gt__", "$gte": "__ge__"}


@dataclass
class QueryArgs:
    where: dict[str, Any] = field(default_factory=dict)
    order: str | None = None
    limit: int = DEFAULT_LIMIT
    skip: int = 0
    count: bool = False
    keys: list[str] | None = None
    exclude_keys: list[str] | None = None
    include: list[str] = field(default_factory=list)


@dataclass
class QueryResult:
    results: list[dict[str, Any]]
    count: int | None
    #: (class name, profile id, object id) of everything returned, for the audit of reads.
    touched: list[tuple[str, str | None, str]]


class Translator:
    """Turns a `where` object into a SQL predicate on one class's columns."""

    def __init__(self, session: Session, p: Principal):
        self.session = session
        self.p = p

    def where(self, spec: ClassSpec, where: Any) -> ColumnElement[bool]:
        if not isinstance(where, dict):
            raise InvalidQuery("where must be an object")
        parts = []
        for key, constraint in where.items():
            if key in ("$or", "$and", "$nor"):
                if not isinstance(constraint, list):
                    raise InvalidQuery(f"{key} must be an array")
                subs = [self.where(spec, c) for c in constraint]
                if key == "$or":
                    parts.append(or_(*subs) if subs else false())
                elif key == "$and":
                    parts.append(and_(*subs) if subs else true())
                else:
                    parts.append(not_(or_(*subs)) if subs else true())
                continue
            if key.startswith("$"):
                raise InvalidQuery(f"Unsupported query operator: {key}")
            parts.append(self.field(spec, key, constraint))
        return and_(*parts) if parts else true()

    def field(self, spec: ClassSpec, key: str, constraint: Any) -> ColumnElement[bool]:
        model = spec.model
        if key in BUILTIN_ATTRS:
            kind = "String" if key == "objectId" else "Date"
            f = FieldSpec(name=key, type=kind, attr=BUILTIN_ATTRS[key])
        else:
            f = spec.fields.get(key)
            if f is None:
                # Parse answers a constraint on an unknown field with no results, not an error.
                return false()
        column = getattr(model, f.attr)
        if codec.has_nul(constraint):  # PostgreSQL refuses U+0000 in text; no stored value holds one
            raise InvalidQuery(f"the constraint on {key} contains the NUL character")
        if isinstance(constraint, dict) and not ("__type" in constraint):
            if not constraint:
                return true()
            return and_(*[self.operator(spec, f, column, op, arg, constraint) for op, arg in constraint.items()
                          if op != "$options"])
        return self.equals(f, column, constraint, model)

    # -- operators --

    def operator(self, spec, f: FieldSpec, column, op: str, arg: Any, all_ops: dict) -> ColumnElement[bool]:
        model = spec.model
        if op in _COMPARE:
            if f.type == "Mixed":
                column = model.value_text if isinstance(arg, str) else column
            return getattr(column, _COMPARE[op])(self.value(f, arg))
        if op == "$eq":
            return self.equals(f, column, arg, model)
        if op == "$ne":
            return or_(not_(self.equals(f, column, arg, model)), self.is_null(f, column, model)) if arg is not None \
                else not_(self.is_null(f, column, model))
        if op in ("$in", "$nin"):
            if not isinstance(arg, list):
                raise InvalidInput(f"bad {op} value")
            if f.type == "Array":
                cond = or_(*[json_array_contains(column, _item(f, v)) for v in arg]) if arg else false()
            elif f.type == "Mixed":
                nums = [float(v) for v in arg if isinstance(v, (int, float)) and not isinstance(v, bool)]
                texts = [v for v in arg if isinstance(v, str)]
                cond = or_(column.in_(nums), model.value_text.in_(texts))
            else:
                cond = column.in_([self.value(f, v) for v in arg])
            return cond if op == "$in" else or_(not_(cond), self.is_null(f, column, model))
        if op == "$exists":
            if not isinstance(arg, bool):
                raise InvalidQuery("$exists must be a boolean")
            return not_(self.is_null(f, column, model)) if arg else self.is_null(f, column, model)
        if op == "$regex":
            # Only text is matched: Parse Server's PostgreSQL adapter fails on another column type, and
            # what an Array's or a Date's text would be differs between the databases.
            if f.type not in ("String", "Mixed"):
                raise InvalidQuery(f"$regex is only supported on String fields; {f.name} is {f.type}")
            flags = regexes.check(arg, all_ops.get("$options", ""), self.session)
            target = model.value_text if f.type == "Mixed" else column
            if flags and self.session.get_bind().dialect.name == "sqlite":
                # SQLAlchemy drops flags on SQLite; our REGEXP function (gateway.regexes) reads an inline (?i).
                return target.regexp_match("(?i)" + arg)
            return target.regexp_match(arg, flags=flags)
        if op == "$all":
            if f.type != "Array" or not isinstance(arg, list):
                raise InvalidQuery("$all needs an array field and an array value")
            return and_(*[json_array_contains(column, _item(f, v)) for v in arg]) if arg else true()
        if op in ("$inQuery", "$notInQuery"):
            if f.type != "Pointer" or not isinstance(arg, dict):
                raise InvalidQuery(f"bad {op} value")
            inner = self.subquery(arg, expect=f.target, key="objectId")
            return column.in_(inner) if op == "$inQuery" else or_(column.not_in(inner), column.is_(None))
        if op in ("$select", "$dontSelect"):
            if not isinstance(arg, dict) or not isinstance(arg.get("query"), dict) or not isinstance(arg.get("key"), str):
                raise InvalidQuery(f"bad {op} value")
            inner = self.subquery(arg["query"], expect=None, key=arg["key"])
            return column.in_(inner) if op == "$select" else or_(column.not_in(inner), column.is_(None))
        raise InvalidQuery(f"Unsupported query operator: {op}")

    def subquery(self, query: dict, *, expect: str | None, key: str):
        """SELECT key FROM inner class WHERE inner where AND what the caller may read."""
        name = query.get("className")
        inner = class_spec(name) if isinstance(name, str) else None
        if inner is None or (expect and inner.name != expect):
            raise InvalidQuery(f"improper usage of subquery on class {name}")
        attr = BUILTIN_ATTRS.get(key) or (inner.fields[key].attr if key in inner.fields else None)
        if attr is None:
            raise InvalidQuery(f"unknown key {key} in subquery")
        model = inner.model
        stmt = select(getattr(model, attr)).where(
            self.where(inner, query.get("where", {})), access.read_filter(model, self.p))
        if model.__soft_delete__:
            stmt = stmt.where(model.deleted_at.is_(None))
        return stmt

    def equals(self, f: FieldSpec, column, value: Any, model) -> ColumnElement[bool]:
        if value is None:
            return self.is_null(f, column, model)
        if f.type == "Array" and not isinstance(value, list):
            return json_array_contains(column, _item(f, value))
        if f.type == "Mixed":
            if isinstance(value, str):
                return model.value_text == value
            return column == self.value(f, value)
        if f.type in ("Array", "Object"):
            raise InvalidQuery(f"equality on {f.type} field {f.name} is not supported; use $all or $exists")
        return column == self.value(f, value)

    @staticmethod
    def is_null(f: FieldSpec, column, model) -> ColumnElement[bool]:
        if f.type == "Mixed":
            return and_(column.is_(None), model.value_text.is_(None))
        return column.is_(None)

    @staticmethod
    def value(f: FieldSpec, value: Any) -> Any:
        """A constraint's value as the column stores it."""
        t = f.type
        if t == "Date":
            if isinstance(value, dict) and value.get("__type") == "Date":
                return codec.parse_iso(value.get("iso"))
            if isinstance(value, str):
                return codec.parse_iso(value)
            raise InvalidQuery(f"bad date constraint on {f.name}")
        if t == "Pointer":
            if isinstance(value, dict) and value.get("__type") in ("Pointer", "Object"):
                value = value.get("objectId")
            if isinstance(value, str):
                return value
            raise InvalidQuery(f"bad pointer constraint on {f.name}: its objectId must be a string")
        if t == "File":
            name = value.get("name") if isinstance(value, dict) else value
            if isinstance(name, str):
                return name
            raise InvalidQuery(f"bad file constraint on {f.name}")
        if t in ("Number", "Mixed"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidQuery(f"bad number constraint on {f.name}")
            return value
        if t == "Boolean" and not isinstance(value, bool):
            raise InvalidQuery(f"bad boolean constraint on {f.name}")
        if t == "String" and not isinstance(value, str):
            raise InvalidQuery(f"bad string constraint on {f.name}")
        return value


def _item(f: FieldSpec, value: Any) -> Any:
    """An array item a constraint looks for: a JSON scalar (our Array fields hold strings; an object or an
    array item would be compared as text that differs between the databases)."""
    if isinstance(value, (str, int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return value
    raise InvalidQuery(f"bad array item constraint on {f.name}: {codec.describe(value)}")


def order_clauses(spec: ClassSpec, order: str | None) -> list:
    model = spec.model
    clauses = []
    for key in (order or "").split(","):
        key = key.strip()
        desc = key.startswith("-")
        name = key.lstrip("-+")
        attr = BUILTIN_ATTRS.get(name) or (spec.fields[name].attr if name in spec.fields else None)
        if attr is None:
            continue  # Parse ignores ordering by an unknown field
        cols = [getattr(model, attr)]
        if spec.fields.get(name) and spec.fields[name].text_attr:
            cols.append(getattr(model, spec.fields[name].text_attr))
        clauses.extend(c.desc() if desc else c.asc() for c in cols)
    clauses.append(model.object_id.asc())  # a total order, so that skip/limit pages are stable
    return clauses


def visible(spec: ClassSpec, p: Principal):
    model = spec.model
    conds = [access.read_filter(model, p)]
    if model.__soft_delete__:
        conds.append(model.deleted_at.is_(None))
    return and_(*conds)


def run_query(session: Session, p: Principal, class_name: str, args: QueryArgs,
              file_url: codec.FileUrl | None = None) -> QueryResult:
    spec = spec_for(class_name, p)
    access.require_authenticated(p)
    model = spec.model
    # A query is translated and compiled once per caller and exact `where` (apps repeat the same few
    # queries): the translation only depends on those, the access rule's clock is a per-run value.
    where_key = exact_key(args.where)

    def predicate():
        return and_(Translator(session, p).where(spec, args.where), visible(spec, p))

    count = None
    rows = []
    with limited(session, where_key):
        if args.count:
            count = prepared(session, ("count", spec.name, p, where_key), lambda: select(
                func.count()).select_from(model).where(predicate())).scalar(session)
        if args.limit > 0:
            page = (min(args.limit, MAX_LIMIT), args.skip, args.order)

            def build():
                return select(*served_columns(spec, session)).where(predicate()) \
                    .order_by(*order_clauses(spec, args.order)).limit(page[0]).offset(page[1])

            rows = prepared(session, ("query", spec.name, p, where_key, page), build).rows(session)
    return _answer(session, p, spec, rows, count, args, file_url)


def limited(session: Session, where_key: bytes):
    """The time limit of a query holding a `$regex` (gateway.regexes); nothing for any other."""
    return regexes.time_limit(session) if b'"$regex"' in where_key else contextlib.nullcontext()


def exact_key(where: Any) -> bytes:
    """The `where` as canonical JSON text: the same query in another key order is the same statement."""
    try:
        return orjson.dumps(where, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits, which orjson refuses
        return json.dumps(where, sort_keys=True).encode()


#: Parse's instant format as PostgreSQL's to_char writes a UTC timestamp (stored instants carry milliseconds
#: at most: db.UTCDateTime).
PARSE_INSTANT = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'


def served_columns(spec: ClassSpec, session: Session) -> tuple:
    """`columns` of the class for the session's database."""
    return columns(spec.name, session.get_bind().dialect.name)


@functools.cache
def columns(class_name: str, dialect: str = "") -> tuple:
    """The columns a native answer is made of (codec.encode's, without the FHIR leftovers), labelled with
    their attribute names: query results are only encoded, so plain rows (read like the ORM objects:
    row.object_id) do; building entities was ~13 % of a 20-row query, and reading the leftovers, the
    version and the writer that no answer shows ~5 %."""
    spec = class_spec(class_name)
    served = {"object_id", "created_at", "updated_at", "acl"}
    for f in spec.fields.values():
        served.update(a for a in (f.attr, f.text_attr) if a)
    out = []
    for a in sa_inspect(spec.model).column_attrs:
        if a.key not in served:
            continue
        column = getattr(spec.model, a.key)
        if dialect == "postgresql" and isinstance(a.columns[0].type, UTCDateTime):
            # PostgreSQL writes the instant as the answer shows it (codec takes text as it is): formatting
            # three per row in Python was ~10 % of a 20-row query's CPU (py-spy).
            column = func.to_char(func.timezone("UTC", column), PARSE_INSTANT).label(a.key)
        out.append(column)
    return tuple(out)


def _answer(session: Session, p: Principal, spec: ClassSpec, rows: list, count: int | None, args: QueryArgs,
            file_url: codec.FileUrl | None) -> QueryResult:
    """Encode, include, project, and audit what is handed out."""
    results = [codec.encode(spec, row, file_url=file_url) for row in rows]
    touched = [(spec.name, _profile_of(spec, row), row.object_id) for row in rows]
    if args.include:
        touched += include(session, p, spec, results, args.include, file_url)
    if args.keys is not None or args.exclude_keys:
        results = [project(r, args.keys, args.exclude_keys) for r in results]
    audit.record_reads(session, p, touched)
    return QueryResult(results, count, touched)


def get_object(session: Session, p: Principal, class_name: str, object_id: str, *, include: list[str] | None = None,
               keys: list[str] | None = None, file_url: codec.FileUrl | None = None) -> dict[str, Any]:
    """One object by id with the same access, include, projection and audit as a query. The statement is
    built once per (class, caller) and reused with the id as a parameter: building it and computing its
    cache key cost more than running it (docs/PERFORMANCE.md)."""
    spec = spec_for(class_name, p)
    access.require_authenticated(p)
    refuse_nul((object_id,), "An objectId")
    stmt = prepared(session, ("get_object", spec.name, p), lambda: select(*served_columns(spec, session))
                    .where(spec.model.object_id == bindparam("phr_object_id"), visible(spec, p)).limit(1))
    rows = stmt.rows(session, {"phr_object_id": object_id})
    if not rows:
        raise NotFound("Object not found.")
    args = QueryArgs(limit=1, include=include or [], keys=keys)
    return _answer(session, p, spec, rows, None, args, file_url).results[0]


def _profile_of(spec: ClassSpec, row) -> str | None:
    if spec.name == "Profile":
        return row.object_id
    return getattr(row, "profile_id", None) if spec.has_profile else None


def include(session: Session, p: Principal, spec: ClassSpec, objects: list[dict], paths: list[str],
            file_url: codec.FileUrl | None) -> list[tuple[str, str | None, str]]:
    """Replace pointers on the given dotted paths by the objects, one batched query per class and level;
    a pointer the caller may not read stays a bare pointer (as in Parse)."""
    touched = []
    tree: dict[str, Any] = {}
    for path in paths:
        if path == "*":
            for name, f in spec.fields.items():
                if f.type == "Pointer":
                    tree.setdefault(name, {})
            continue
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    _include_level(session, p, spec, objects, tree, file_url, touched)
    return touched


def _include_level(session, p, spec, objects, tree, file_url, touched):
    for name, subtree in tree.items():
        f = spec.fields.get(name)
        if f is None or f.type != "Pointer":
            continue
        target = class_spec(f.target)
        ids = {o[name]["objectId"] for o in objects if isinstance(o.get(name), dict)}
        if not ids:
            continue
        model = target.model
        rows = session.scalars(select(model).where(model.object_id.in_(sorted(ids)), visible(target, p))).all()
        # The dicts placed into `objects` are the ones the next level fills in (dotted paths).
        found = {r.object_id: {**codec.encode(target, r, file_url=file_url), "__type": "Object",
                               "className": target.name} for r in rows}
        touched.extend((target.name, _profile_of(target, r), r.object_id) for r in rows)
        for o in objects:
            ptr = o.get(name)
            if isinstance(ptr, dict) and ptr.get("objectId") in found:
                o[name] = found[ptr["objectId"]]
        if subtree:
            _include_level(session, p, target, list(found.values()), subtree, file_url, touched)


_ALWAYS = ("objectId", "createdAt", "updatedAt", "ACL", "__type", "className")


def project(obj: dict[str, Any], keys: list[str] | None, exclude: list[str] | None) -> dict[str, Any]:
    """Parse's `keys` (dotted keys reach into included objects) and `excludeKeys`."""
    out = obj
    if keys is not None:
        nested: dict[str, list[str]] = defaultdict(list)
        top = set()
        for k in keys:
            head, _, rest = k.partition(".")
            top.add(head)
            if rest:
                nested[head].append(rest)
        out = {}
        for k, v in obj.items():
            if k in _ALWAYS or k in top:
                if k in nested and isinstance(v, dict) and v.get("__type") == "Object":
                    v = project(v, nested[k], None)
                out[k] = v
    if exclude:
        out = {k: v for k, v in out.items() if k not in exclude or k == "objectId"}
    return out
