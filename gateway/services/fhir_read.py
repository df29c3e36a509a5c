"""Reading the FHIR view: read, vread, search (with _include/_revinclude and keyset pages), history and
$everything. Every query carries the access policy; every resource handed to someone other than its
patient's owner is audited."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from gateway import access, audit
from gateway.access import Principal
from gateway.errors import Gone, InvalidInput, NotFound
from gateway.fhir import paging
from gateway.fhir.extract import date_range
from gateway.fhir.params import RESOURCE_TYPES, params_for
from gateway.fhir.search import Compiler, ParsedSearch, SearchError, index_alias, param_is, parse
from gateway.models import FhirHistory, FhirResource
from gateway.services.consents import refresh_expired_consents
from gateway.services.prepared import prepared

DEFAULT_COUNT = 20
MAX_COUNT = 1000
MAX_INCLUDE_DEPTH = 4
#: What serving a resource needs (Bundle entry, headers, audit, Patient.contact): every column but the
#: policy's `category`. Searches and reads select these as plain rows, not FhirResource entities: the
#: identity map and instance state cost more than the rest of a read (bench/profile_inproc.py).
SERVED = (FhirResource.resource_type, FhirResource.id, FhirResource.class_name, FhirResource.source_id,
          FhirResource.profile_id, FhirResource.version_id, FhirResource.last_updated, FhirResource.deleted,
          FhirResource.body)


@dataclass
class Page:
    #: Rows of SERVED (attributes as on FhirResource), not entities.
    matches: list[Row]
    includes: list[Row] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None
    outcome_ignored: list[str] = field(default_factory=list)


def _count(controls: dict[str, list[str]]) -> int:
    raw = controls.get("_count", [str(DEFAULT_COUNT)])[-1]
    try:
        n = int(raw)
    except ValueError:
        raise SearchError("_count must be a non-negative integer") from None
    if n < 0:
        raise SearchError("_count must be a non-negative integer")
    return min(n, MAX_COUNT)


class FhirReader:
    def __init__(self, session: Session, principal: Principal, base_url: str):
        self.session = session
        self.p = principal
        self.base_url = base_url
        self.compiler = Compiler(lambda R: access.fhir_read_filter(self.p, R, letter="s"), base_url)

    def readable(self, R=FhirResource, letter: str = "r"):
        return access.fhir_read_filter(self.p, R, letter=letter)

    # ---- read / vread ----

    def read(self, rt: str, rid: str, *, audited: bool = True) -> Row:
        if rt in ("Consent", "Group"):
            refresh_expired_consents(self.session)
        row = self._current(rt, rid)
        if row is None:
            raise NotFound(f"{rt}/{rid} is not known")
        if row.deleted:
            raise Gone(f"{rt}/{rid} was deleted")
        if audited:
            self.audit([row])
        return self.served([row])[0]

    def _current(self, rt: str, rid: str):
        """One resource by type and id under the policy: prepared once per caller and run with the type and
        id (services/prepared.py; building the select and its SQL cache key cost as much as running it)."""
        R = FhirResource
        rows = prepared(self.session, ("fhir_read", self.p), lambda: select(*SERVED).where(
            R.resource_type == bindparam("phr_rt"), R.id == bindparam("phr_rid"), self.readable())
        ).rows(self.session, {"phr_rt": rt, "phr_rid": rid})
        return rows[0] if rows else None

    def vread(self, rt: str, rid: str, vid: str) -> FhirHistory:
        current = self._current(rt, rid)
        if current is None or not vid.isdigit():
            raise NotFound(f"{rt}/{rid}/_history/{vid} is not known")
        version = self.session.get(FhirHistory, (rt, rid, int(vid)))
        if version is None:
            raise NotFound(f"{rt}/{rid}/_history/{vid} is not known")
        if version.deleted:
            raise Gone(f"{rt}/{rid} version {vid} is a deletion")
        self.audit([current])
        return self.served([version])[0]

    # ---- search ----

    def search(self, rt: str, items: list[tuple[str, str]], *, lenient: bool = False,
               extra: Any = None) -> tuple[Page, ParsedSearch]:
        if rt not in RESOURCE_TYPES:
            raise NotFound(f"Resource type {rt} is not served here")
        if rt in ("Consent", "Group"):
            refresh_expired_consents(self.session)
        parsed = parse(rt, items, lenient=lenient)
        controls = parsed.controls
        R = FhirResource
        cursor = controls.get("_cursor", [None])[-1]

        def matching(after_cursor: bool = True):
            where = and_(R.resource_type == rt, R.deleted.is_(False), self.readable(R, "s"),
                         self.compiler.predicate(R, parsed))
            if extra is not None:
                where = and_(where, extra)
            if cursor and after_cursor:  # a page; the total counts every match
                where = and_(where, paging.after(keys, paging.decode_cursor(cursor, len(keys)), reverse=backwards))
            return where

        # The statements depend on nothing but the caller and the search as written (the policy's clock is a
        # per-run value): prepared once per caller and exact search (services/prepared.py), unless a
        # compartment adds its own condition.
        exact = None if extra is not None else (rt, self.p, tuple(items), lenient)
        summary = controls.get("_summary", [None])[-1]
        total_mode = controls.get("_total", ["accurate"])[-1]
        page = Page(matches=[], outcome_ignored=parsed.ignored)
        wants_total = summary == "count" or total_mode in ("accurate", "estimate")
        count = _count(controls)
        keys = paging.sort_keys(R, rt, controls.get("_sort", [None])[-1])
        backwards = controls.get("_dir", ["next"])[-1] == "prev"
        if summary == "count" or (wants_total and cursor):
            page.total = self._rows(("fhir_search_total", exact), lambda: select(func.count()).select_from(R).where(
                matching(after_cursor=False)))[0][0]
        if summary == "count":
            return page, parsed
        counted = wants_total and not cursor
        rows = self._rows(("fhir_search", exact), lambda: _page(matching(), keys, count + 1, backwards, counted))
        if counted:
            page.total = rows[0].phr_total if rows else 0
        more = len(rows) > count
        rows = rows[:count]
        if backwards:
            rows.reverse()
        page.matches = list(rows)
        if rows:
            n = len(SERVED)
            first, last = list(rows[0][n:n + len(keys)]), list(rows[-1][n:n + len(keys)])
            if more or backwards:
                page.next_cursor = paging.encode_cursor(last)
            if cursor and (not backwards or more):
                page.prev_cursor = paging.encode_cursor(first)
        page.includes = self.includes(rt, page.matches, controls)
        self.audit(page.matches + page.includes)
        page.matches, page.includes = self.served(page.matches), self.served(page.includes)
        return page, parsed

    def _rows(self, key: tuple, build) -> list:
        """The rows of the statement `build()` makes: prepared under `key` when its last part (the exact
        search) is known, else built and run for this request only."""
        if key[-1] is None:
            return self.session.execute(build()).all()
        return prepared(self.session, key, build).rows(self.session)

    def includes(self, rt: str, matches: list[Row], controls: dict[str, list[str]]) -> list[Row]:
        """_include and _revinclude (with :iterate), one batched query per step, under the policy."""
        if not matches:
            return []
        seen = {(m.resource_type, m.id) for m in matches}
        found: list[Row] = []
        frontier = list(matches)
        specs = [(v, False) for v in controls.get("_include", [])] + [(v, True) for v in controls.get("_revinclude", [])]
        iterate = [(v, rev) for v, rev in specs if ":iterate" in v]
        for depth in range(MAX_INCLUDE_DEPTH):
            active = specs if depth == 0 else iterate
            if not active or not frontier:
                break
            new: list[Row] = []
            for spec, reverse in active:
                parts = spec.replace(":iterate", "").replace(":recurse", "").split(":")
                if parts == ["*"] and not reverse:  # every reference of whatever the frontier holds
                    for source in sorted({r.resource_type for r in frontier}):
                        for row in self._include(source, "*", None, frontier):
                            if (row.resource_type, row.id) not in seen:
                                seen.add((row.resource_type, row.id))
                                new.append(row)
                    continue
                if len(parts) < 2:
                    raise SearchError(f"Malformed include '{spec}'")
                source, param = parts[0], parts[1]
                target = parts[2] if len(parts) > 2 else None
                for row in (self._revinclude(source, param, frontier) if reverse
                            else self._include(source, param, target, frontier)):
                    if (row.resource_type, row.id) not in seen:
                        seen.add((row.resource_type, row.id))
                        new.append(row)
            found.extend(new)
            frontier = new
        return found

    def _include(self, source: str, param: str, target: str | None, frontier: list[Row]):
        if source not in RESOURCE_TYPES or (param != "*" and param not in params_for(source)) \
                or (target is not None and target not in RESOURCE_TYPES):
            raise SearchError(f"Unknown include '{source}:{param}'" + (f":{target}" if target else ""))
        ids = [r.id for r in frontier if r.resource_type == source]
        if not ids:
            return []
        I = index_alias()
        conds = [I.resource_type == source, I.resource_id.in_(ids), I.target_id.is_not(None)]
        if param == "*":
            conds.append(I.param.in_([c for c, p in params_for(source).items() if p.type == "reference"]))
        else:
            conds.append(param_is(I, source, param))
        if target:
            conds.append(I.target_type == target)
        pairs = self.session.execute(select(I.target_type, I.target_id).where(*conds).distinct()).all()
        if not pairs:
            return []
        by_type: dict[str, set[str]] = {}
        for t, i in pairs:
            by_type.setdefault(t, set()).add(i)
        R = FhirResource
        return self.session.execute(select(*SERVED).where(
            or_(*[and_(R.resource_type == t, R.id.in_(sorted(i))) for t, i in by_type.items()]),
            R.deleted.is_(False), self.readable(R))).all()

    def _revinclude(self, source: str, param: str, frontier: list[Row]):
        if source not in RESOURCE_TYPES or (param != "*" and param not in params_for(source)):
            raise SearchError(f"Unknown revinclude '{source}:{param}'")
        R, I = FhirResource, index_alias()
        targets = {(r.resource_type, r.id) for r in frontier}
        by_type: dict[str, list[str]] = {}
        for t, i in targets:
            by_type.setdefault(t, []).append(i)
        pointing = select(I.resource_id).where(
            I.resource_type == source,
            param_is(I, source, param) if param != "*" else I.target_id.is_not(None),
            or_(*[and_(I.target_type == t, I.target_id.in_(ids)) for t, ids in by_type.items()]))
        return self.session.execute(select(*SERVED).where(
            R.resource_type == source, R.id.in_(pointing), R.deleted.is_(False), self.readable(R))).all()

    # ---- history ----

    def history(self, rt: str | None, rid: str | None, controls: dict[str, list[str]]) -> list[FhirHistory]:
        H, R = FhirHistory, FhirResource
        stmt = select(H).join(R, and_(R.resource_type == H.resource_type, R.id == H.id)).where(self.readable(R))
        if rt:
            stmt = stmt.where(H.resource_type == rt)
        if rid:
            if self.session.scalar(select(R.id).where(R.resource_type == rt, R.id == rid, self.readable(R))) is None:
                raise NotFound(f"{rt}/{rid} is not known")
            stmt = stmt.where(H.id == rid)
        since = controls.get("_since", [None])[-1]
        if since:
            rng = date_range(since)
            if rng is None or "T" not in since:
                raise InvalidInput("_since must be an instant (yyyy-mm-ddThh:mm:ss+zz:zz)")
            stmt = stmt.where(H.last_updated >= rng[0])
        at = controls.get("_at", [None])[-1] if "_at" in controls else None
        del at
        count = _count(controls)
        rows = list(self.session.scalars(stmt.order_by(H.last_updated.desc(), H.version_id.desc()).limit(count)))
        self.audit_history(rows)
        return self.served(rows)

    # ---- $everything ----

    def everything(self, pid: str, controls: dict[str, list[str]]) -> tuple[list[FhirResource], str | None]:
        """The patient's compartment (what the caller may see of it), plus the practitioners and
        organizations it references; `_since`, `_type` and keyset pages with `_count`."""
        patient = self.read("Patient", pid, audited=False)  # audited with the rest: one row per request
        R = FhirResource
        # The Patient itself leads the first page, so the compartment query leaves it out.
        conds = [R.deleted.is_(False), self.readable(R), or_(R.resource_type != "Patient", R.id != R.profile_id)]
        types = [t for v in controls.get("_type", []) for t in v.split(",") if t]
        if types:
            conds.append(R.resource_type.in_(types))
        since = controls.get("_since", [None])[-1]
        if since:
            rng = date_range(since)
            if rng is None:
                raise InvalidInput("_since must be an instant")
            conds.append(R.last_updated >= rng[0])
        count = min(int(controls.get("_count", ["1000"])[-1]), 5000)
        keys = [(R.resource_type, False), (R.id, False)]
        cursor = controls.get("_cursor", [None])[-1]

        def compartment(patient_id):
            # Plain rows with what the Bundle and the audit need, not ORM objects: loading 1000 entities into
            # the identity map was most of $everything's time (bench/profile_inproc.py everything).
            stmt = select(R.resource_type, R.id, R.class_name, R.source_id, R.profile_id, R.body).where(
                R.profile_id == patient_id, *conds)
            if cursor:
                stmt = stmt.where(paging.after(keys, paging.decode_cursor(cursor, 2)))
            return stmt.order_by(R.resource_type, R.id).limit(count + 1)

        if since or cursor:
            rows = list(self.session.execute(compartment(pid)).all())
        else:
            # The first page without _since is the same statement for every patient: prepared per caller, its
            # ~1,000 rows read on the driver (services/prepared.py).
            rows = prepared(self.session, ("everything", self.p, tuple(types), count),
                            lambda: compartment(bindparam("phr_pid"))).rows(self.session, {"phr_pid": pid})
        more = len(rows) > count
        rows = rows[:count]
        if not cursor and (not types or "Patient" in types):
            rows.insert(0, patient)
        if not cursor:
            refs = self._include("Patient", "general-practitioner", None, [patient]) if not types else []
            rows.extend(r for r in refs if r not in rows)
        self.audit(rows)
        next_cursor = paging.encode_cursor([rows[-1].resource_type, rows[-1].id]) if more and rows else None
        return self.served(rows), next_cursor

    # ---- what is handed out ----

    def served(self, rows: list) -> list:
        """The rows as this caller may receive them: a Patient whose contacts the caller may not see
        comes without Patient.contact (the stored resource itself is untouched)."""
        patients = {r.id for r in rows if r.resource_type == "Patient" and r.body and '"contact"' in r.body}
        hidden = access.contacts_hidden(self.session, self.p, patients) if patients else set()
        if not hidden:
            return rows
        return [WithoutContacts(r) if r.resource_type == "Patient" and r.id in hidden else r for r in rows]

    # ---- audit ----

    def audit(self, rows: list[FhirResource]) -> None:
        audit.record_reads(self.session, self.p, [(r.class_name, r.profile_id, r.source_id) for r in rows], via="fhir")

    def audit_history(self, rows: list[FhirHistory]) -> None:
        if not rows:
            return
        R = FhirResource
        keys = {(h.resource_type, h.id) for h in rows}
        found = self.session.scalars(select(R).where(or_(*[and_(R.resource_type == t, R.id == i) for t, i in keys])))
        self.audit(list(found))


def _page(where, keys: list, limit: int, backwards: bool, counted: bool):
    """A page of matches: SERVED, then the sort key values (for the cursors), then, when `counted`, the total
    of all matches as `phr_total`. A first page counts in the same statement rather than in a second one
    (the policy's SQL built, sent and planned once): a window over the filtered set, taken before LIMIT, in
    an inner select of ids and sort keys only. A window beside the bodies would hold every match's body
    (1,800 Observations: 1.7 ms in PostgreSQL, against 1.2 ms for count + page and 1.0 ms for this); here
    only the rows the page keeps are joined to their bodies. A later page is narrowed by its cursor, so its
    total is counted apart."""
    R = FhirResource
    if not counted:
        stmt = select(*SERVED, *[k for k, _ in keys]).where(where)
        return stmt.order_by(*paging.order_by(keys, reverse=backwards)).limit(limit)
    found = select(R.resource_type, R.id, *[k.label(f"phr_key{i}") for i, (k, _) in enumerate(keys)],
                   func.count().over().label("phr_total")).where(where)
    found = found.order_by(*paging.order_by(keys, reverse=backwards)).limit(limit).subquery("phr_page")
    found_keys = [(found.c[f"phr_key{i}"], desc) for i, (_, desc) in enumerate(keys)]
    stmt = select(*SERVED, *[k for k, _ in found_keys], found.c.phr_total).join_from(
        R, found, and_(R.resource_type == found.c.resource_type, R.id == found.c.id))
    return stmt.order_by(*paging.order_by(found_keys, reverse=backwards))


class WithoutContacts:
    """A stored Patient (current or historical) served without its contacts."""

    def __init__(self, row):
        self._row = row
        resource = orjson.loads(row.body)
        resource.pop("contact", None)
        self.body = orjson.dumps(resource).decode()

    def __getattr__(self, name):
        return getattr(self._row, name)


def parse_instant(text: str) -> datetime:
    rng = date_range(text)
    if rng is None:
        raise InvalidInput(f"invalid instant {text!r}")
    return rng[0]
