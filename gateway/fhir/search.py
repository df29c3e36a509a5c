"""FHIR search in SQL over the FHIR view (hl7.org/fhir/R4/search.html).

Parameters come from the official registry (gateway/fhir/params.py); every criterion becomes an EXISTS on
fhir_index, joined to fhir_resource, together with the access policy. Supported: token (system|code, |code,
code, system|, :not, :text), string (default starts-with, :exact, :contains), date (eq ne lt gt le ge sa eb
ap, partial dates), reference (Type/id, id, absolute URL, :Type), quantity and number (prefixes, precision),
uri (:below, :above), :missing on all, _id, _lastUpdated, chained parameters, _has, comma = OR, repeats =
AND.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true
from sqlalchemy.orm import aliased

from gateway.errors import InvalidInput
from gateway.fhir.extract import IDENTIFIER_MARK, date_range, normalize, shifted
from gateway.fhir.params import RESOURCE_TYPES, SearchParam, params_for, stored_as
from gateway.models import FhirIndex, FhirResource

#: Result parameters (not criteria).
CONTROL = {"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_format",
           "_pretty", "_page", "_contained", "_containedType", "_since", "_type", "_cursor", "_dir",
           # Aidbox's `_totalMethod` (fhirpy's count() sends it) only says how to compute the total; ours is
           # always exact, so it is accepted and has no effect.
           "_totalMethod"}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def index_alias():
    """The columns of a fresh alias of fhir_index (`I.value`, `I.target_id`, as on the model). A plain table
    alias, not an ORM `aliased(FhirIndex)`: building a criterion on the ORM alias cost ~0.3 ms, on this one
    ~0.1 ms, and a search builds one per criterion on every request."""
    return FhirIndex.__table__.alias().c


def param_is(I, rt: str, code: str) -> ColumnElement[bool]:
    """The index rows (of alias `I`) that hold the values of parameter `code` of `rt`: its own, or for a
    parameter made of others (params.storage) theirs, references to its one target type only."""
    where = stored_as(rt, code)
    clause = I.param == where.params[0] if len(where.params) == 1 else I.param.in_(where.params)
    if where.target_type:
        # What the parameter would index itself: references to that type, and literal references that
        # name no type (absolute URLs...); not those to other types, nor Reference.identifier rows.
        clause = and_(clause, or_(I.target_type == where.target_type,
                                  and_(I.target_type.is_(None), I.norm.is_(None))))
    return clause


class SearchError(InvalidInput):
    """A search the server cannot run: 400 with an OperationOutcome naming the parameter."""


@dataclass
class Criterion:
    name: str
    modifier: str | None
    values: list[str]


@dataclass
class ParsedSearch:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    controls: dict[str, list[str]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


#: What R4 lets a backslash escape in a search value (search.html, 'Escaping search parameters').
ESCAPABLE = ",$|\\"


def _split(raw: str, sep: str, *, unescape: bool) -> list[str]:
    """Split on each `sep` no backslash escapes; `unescape`: also drop the escaping backslashes, else keep
    every escape for a later split (a token's `\\|` must survive the split on commas)."""
    out, cur, i = [], "", 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in ESCAPABLE:
            cur += raw[i + 1] if unescape else raw[i:i + 2]
            i += 2
            continue
        if raw[i] == sep:
            out.append(cur)
            cur = ""
        else:
            cur += raw[i]
        i += 1
    out.append(cur)
    return out


def split_values(raw: str) -> list[str]:
    """Comma-separated OR values, each still escaped (`unescape` or `_split_pipe` take the escapes off)."""
    return _split(raw, ",", unescape=False)


_ESCAPE = re.compile("\\\\([" + re.escape(ESCAPABLE) + "])")


def unescape(value: str) -> str:
    """One value as meant: `\\,` a comma, `\\|` a pipe, `\\$` a dollar sign, `\\\\` a backslash."""
    return _ESCAPE.sub(r"\1", value) if "\\" in value else value


def _split_pipe(raw: str) -> list[str]:
    """system|code (and quantity's number|system|code) on the unescaped pipes, each part unescaped."""
    return _split(raw, "|", unescape=True)


def parse(resource_type: str, items: list[tuple[str, str]], *, lenient: bool = False) -> ParsedSearch:
    out = ParsedSearch(resource_type)
    known = params_for(resource_type)
    for key, value in items:
        if key in CONTROL:
            out.controls.setdefault(key, []).append(value)
            continue
        head, _, mod = key.partition(":")
        if head in ("_include", "_revinclude") and mod in ("iterate", "recurse"):
            # `_include:iterate=Observation:subject` (R4 search.html#revinclude): the reader keeps the
            # modifier on the value.
            out.controls.setdefault(head, []).append(f"{value}:iterate")
            continue
        name, _, modifier = key.partition(":")
        if "." in modifier:  # subject:Patient.name[:exact]: the type modifier of a chain's first link
            target, rest = modifier.split(".", 1)
            name, modifier = f"{name}.{rest}", target
        elif "." in name and modifier:  # subject.name:exact: the modifier belongs to the last link
            name, modifier = f"{name}:{modifier}", ""
        base = name.split(".", 1)[0]
        if name.startswith("_has:") or key.startswith("_has:"):
            out.criteria.append(Criterion(key, None, split_values(value)))
            continue
        if base not in known:
            if lenient:
                out.ignored.append(key)
                continue
            raise SearchError(f"Unknown search parameter '{key}' for {resource_type}")
        out.criteria.append(Criterion(name, modifier or None, split_values(value)))
    return out


# ---- criteria -> SQL ----

def _prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] == "-"):
        return value[:2], value[2:]
    return "eq", value


def _date_clause(prefix: str, value: str, low, high) -> ColumnElement[bool]:
    rng = date_range(value)
    if rng is None:
        raise SearchError(f"Invalid date '{value}'")
    vl, vh = rng
    if prefix == "eq":
        return and_(low >= vl, high <= vh)
    if prefix == "ne":
        return or_(low < vl, high > vh)
    if prefix == "gt":
        return high > vh
    if prefix == "lt":
        return low < vl
    if prefix == "ge":
        return or_(high > vh, and_(low >= vl, high <= vh))
    if prefix == "le":
        return or_(low < vl, and_(low >= vl, high <= vh))
    if prefix == "sa":
        return low > vh
    if prefix == "eb":
        return high < vl
    # ap: overlap, widened by 10% of the distance to now (at least a day), as R4 suggests.
    now = datetime.now(timezone.utc)
    slack = max(abs(now - vl) * 0.1, timedelta(days=1))
    return and_(low <= shifted(vh, slack), high >= shifted(vl, -slack))


def _number_clause(prefix: str, text: str, column) -> ColumnElement[bool]:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise SearchError(f"Invalid number '{text}'") from None
    exponent = number.as_tuple().exponent
    half = Decimal(5) * Decimal(10) ** (exponent - 1) if isinstance(exponent, int) else Decimal(0)
    lo, hi, v = float(number - half), float(number + half), float(number)
    return {
        "eq": and_(column >= lo, column < hi), "ne": or_(column < lo, column >= hi),
        "gt": column > v, "lt": column < v, "ge": column >= v, "le": column <= v,
        "sa": column > v, "eb": column < v,
        "ap": and_(column >= v - abs(v) * 0.1, column <= v + abs(v) * 0.1),
    }[prefix]


class Compiler:
    """Builds the predicate for one resource type. Every sub-select uses fresh aliases, and chains and
    _has apply the access policy again (`readable(alias)`), so they never reveal what the caller may not
    see."""

    def __init__(self, readable: Callable[[Any], ColumnElement[bool]], base_url: str):
        self.readable = readable
        self.base_url = base_url.rstrip("/")

    def predicate(self, R, parsed: ParsedSearch) -> ColumnElement[bool]:
        return and_(true(), *[self.criterion(R, parsed.resource_type, c) for c in parsed.criteria])

    def criterion(self, R, rt: str, c: Criterion) -> ColumnElement[bool]:
        if c.name.startswith("_has:"):
            return self._has(R, rt, c)
        if "." in c.name:
            return self._chain(R, rt, c)
        if c.name in ("_id", "_lastUpdated") and c.modifier == "missing":
            if c.values not in (["true"], ["false"]):
                raise SearchError(f"{c.name}:missing takes true or false")
            return false() if c.values == ["true"] else true()  # every resource has both
        if c.name == "_lastUpdated" and c.modifier:
            raise SearchError(f"Modifier :{c.modifier} is not supported on _lastUpdated")
        if c.name == "_id" and c.modifier not in (None, "not"):
            raise SearchError(f"Modifier :{c.modifier} is not supported on _id")
        if c.name == "_id":
            cond = R.id.in_([unescape(v) for v in c.values])
            return not_(cond) if c.modifier == "not" else cond
        if c.name == "_lastUpdated":
            return or_(*[_date_clause(*_prefix(unescape(v)), R.last_updated, R.last_updated)
                         for v in c.values])
        param = params_for(rt)[c.name]
        if c.modifier == "missing":
            if c.values not in (["true"], ["false"]):
                raise SearchError(f"{c.name}:missing takes true or false")
            has = self._exists(R, rt, param.code, lambda I: true())
            return not_(has) if c.values == ["true"] else has
        if c.modifier == "not" and param.type == "token":
            return not_(or_(*[self._exists(R, rt, param.code, lambda I, v=v: self._token(I, v, None))
                              for v in c.values]))
        return or_(*[self._exists(R, rt, param.code, lambda I, v=v: self.value_clause(I, param, c.modifier, v))
                     for v in c.values])

    @staticmethod
    def _exists(R, rt: str, code: str, clause: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
        I = index_alias()
        return exists(select(I.pk).where(I.resource_type == rt, I.resource_id == R.id, param_is(I, rt, code),
                                         clause(I)))

    def value_clause(self, I, param: SearchParam, modifier: str | None, value: str) -> ColumnElement[bool]:
        t = param.type
        if t == "token":
            return self._token(I, value, modifier)
        if t == "string":
            if modifier not in (None, "exact", "contains"):
                raise SearchError(f"Modifier :{modifier} is not supported on string parameter {param.code}")
            value = unescape(value)
            if modifier == "exact":
                return I.value == value
            needle = normalize(value).replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{needle}%" if modifier == "contains" else f"{needle}%"
            return I.norm.like(pattern, escape="\\")
        if t == "date":
            if modifier:
                raise SearchError(f"Modifier :{modifier} is not supported on date parameter {param.code}")
            prefix, text = _prefix(unescape(value))
            # Every date row has both ends; naming `low` lets the partial date index serve any prefix.
            return and_(I.low.is_not(None), _date_clause(prefix, text, I.low, I.high))
        if t in ("quantity", "number"):
            if modifier:
                raise SearchError(f"Modifier :{modifier} is not supported on {t} parameter {param.code}")
            prefix, text = _prefix(value)
            parts = _split_pipe(text)
            clause = _number_clause(prefix, parts[0], I.number)
            if len(parts) == 3:
                system, code = parts[1], parts[2]
                if system:
                    clause = and_(clause, I.system == system)
                if code:
                    clause = and_(clause, I.value == code)
            return clause
        if t == "reference":
            return self._reference(I, param, modifier, value)
        if t == "uri":
            value = unescape(value)
            if modifier == "below":
                return I.value.like(value.replace("%", "\\%") + "%", escape="\\")
            if modifier == "above":
                return I.value.in_([value[:i] for i in range(1, len(value) + 1)])
            if modifier:
                raise SearchError(f"Modifier :{modifier} is not supported on uri parameter {param.code}")
            return I.value == value
        raise SearchError(f"Parameter type {t} is not supported")

    @staticmethod
    def _token(I, value: str, modifier: str | None) -> ColumnElement[bool]:
        if modifier == "text":
            return I.norm.like(normalize(unescape(value)).replace("%", "\\%") + "%", escape="\\")
        if modifier not in (None, "not"):
            raise SearchError(f"Modifier :{modifier} is not supported on token parameters")
        parts = _split_pipe(value)
        if len(parts) == 1:
            return I.value == parts[0]
        system, code = parts[0], "|".join(parts[1:])
        if system == "":
            return and_(I.system.is_(None), I.value == code)
        if code == "":
            return I.system == system
        return and_(I.system == system, I.value == code)

    def _reference(self, I, param: SearchParam, modifier: str | None, value: str) -> ColumnElement[bool]:
        if modifier == "identifier":
            # R4: match the Reference.identifier (system|value, |value, or value), e.g. an AuditEvent's
            # agent who is a user: users have no FHIR resource and are referenced by identifier.
            parts = _split_pipe(value)
            clause = I.norm == IDENTIFIER_MARK
            if len(parts) == 1:
                return and_(clause, I.value == parts[0])
            system, ident = parts[0], "|".join(parts[1:])
            return and_(clause, I.value == ident, I.system.is_(None) if system == "" else I.system == system)
        if modifier and modifier not in RESOURCE_TYPES:
            raise SearchError(f"Modifier :{modifier} is not supported on reference parameter {param.code}")
        value = unescape(value)
        if value.startswith(self.base_url + "/"):
            value = value[len(self.base_url) + 1:]
        parts = value.split("/")
        if len(parts) >= 2 and "://" not in value:
            rtype, rid = parts[-2], parts[-1]
            if modifier and modifier != rtype:
                return false()
            return and_(I.target_type == rtype, I.target_id == rid)
        if "://" in value:
            return I.value == value
        clause = I.target_id == value
        return and_(clause, I.target_type == modifier) if modifier else clause

    def _chain(self, R, rt: str, c: Criterion) -> ColumnElement[bool]:
        """`patient.name=x`, `subject:Patient.birthdate=...`: the reference's target must match."""
        head, rest = c.name.split(".", 1)
        head_type = c.modifier if c.modifier in RESOURCE_TYPES else None
        param = params_for(rt).get(head)
        if param is None or param.type != "reference":
            raise SearchError(f"Chained parameter '{c.name}' needs a reference parameter")
        inner_name, _, inner_mod = rest.partition(":")
        targets = [head_type] if head_type else (list(param.targets) or list(RESOURCE_TYPES))
        conds = []
        for target in targets:
            if target not in RESOURCE_TYPES:
                continue
            if inner_name.split(".")[0] not in params_for(target) and inner_name not in ("_id", "_lastUpdated"):
                continue
            T = aliased(FhirResource)
            inner = self.criterion(T, target, Criterion(inner_name, inner_mod or None, c.values))
            sub = select(T.id).where(T.resource_type == target, T.deleted.is_(False), self.readable(T), inner)
            conds.append(self._exists(R, rt, param.code,
                                      lambda I, target=target, sub=sub: and_(I.target_type == target,
                                                                             I.target_id.in_(sub))))
        if not conds:
            raise SearchError(f"Chained parameter '{c.name}' does not resolve for {rt}")
        return or_(*conds)

    def _has(self, R, rt: str, c: Criterion) -> ColumnElement[bool]:
        """`_has:Observation:patient:code=1234`: some readable Observation pointing here matches."""
        parts = c.name.split(":")
        if len(parts) < 4:
            raise SearchError(f"Malformed _has parameter '{c.name}'")
        other, ref_param, inner_name = parts[1], parts[2], ":".join(parts[3:])
        if other not in RESOURCE_TYPES or ref_param not in params_for(other):
            raise SearchError(f"Unknown _has target in '{c.name}'")
        inner_base, _, inner_mod = inner_name.partition(":")
        if inner_base not in params_for(other) and inner_base not in ("_id", "_lastUpdated"):
            raise SearchError(f"Unknown search parameter '{inner_name}' for {other}")
        O = aliased(FhirResource)
        I = index_alias()
        matching = select(O.id).where(O.resource_type == other, O.deleted.is_(False), self.readable(O),
                                      self.criterion(O, other, Criterion(inner_base, inner_mod or None, c.values)))
        pointing = select(I.target_id).where(I.resource_type == other, param_is(I, other, ref_param),
                                             I.target_type == rt, I.resource_id.in_(matching))
        return R.id.in_(pointing)
