"""Bulk Data Access 2.0 $export (hl7.org/fhir/uv/bulkdata/export.html): kick-off, status, cancel, files,
and the job runner that workers call.

A job remembers who asked, and the runner exports exactly what that principal may read (the same
fhir_read_filter as every other read, SMART narrowing included). It streams each type with a server-side
cursor and writes NDJSON files as it goes (memory stays flat), saving a resume point after every file, so
a worker killed mid-export loses nothing: another worker picks the job up where the last file ended.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, Iterator

import orjson
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway import access, audit
from gateway.access import Principal, SmartContext
from gateway.db import read_only_session, utcnow
from gateway.errors import Forbidden, Gone, InvalidInput, NotFound
from gateway.fhir.bundles import subset
from gateway.fhir.extract import date_range
from gateway.fhir.params import RESOURCE_TYPES
from gateway.fhir.search import Compiler, parse as parse_search
from gateway.models import ExportFile, ExportJob, FhirResource, Profile, SharedAccess
from gateway import scopes as scope_mod

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
SUPPORTED = {"_outputFormat", "_since", "_type", "_typeFilter", "_elements", "patient"}
#: Types outside the patient compartment are exported at system level only.
SYSTEM_ONLY = {"Practitioner", "Organization"}
FILE_LINES = 50_000
FILE_BYTES = 32 * 1024 * 1024
STALE_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 3
EXPORT_TTL = timedelta(hours=24)
MIN_POLL_INTERVAL = timedelta(seconds=0.5)


# ---- principals are stored with the job, so the worker acts with exactly the asker's rights ----

def principal_json(p: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": p.user_id, "role": p.role, "master": p.master,
                           "provider_ids": sorted(p.provider_ids), "client_id": p.client_id}
    if p.smart is not None:
        out["smart"] = {"scopes": p.smart.scopes.text, "patient_id": p.smart.patient_id,
                        "client_id": p.smart.client_id, "grant_id": p.smart.grant_id}
    return out


def principal_from(d: dict[str, Any]) -> Principal:
    smart = d.get("smart")
    return Principal(
        user_id=d.get("user_id"), role=d.get("role"), master=bool(d.get("master")),
        provider_ids=frozenset(d.get("provider_ids") or ()), client_id=d.get("client_id"),
        smart=SmartContext(scope_mod.parse(smart["scopes"]), smart.get("patient_id"), smart.get("client_id"),
                           smart.get("grant_id")) if smart else None,
    )


def _owner_matches(job: ExportJob, p: Principal) -> bool:
    """Only who started an export polls it and fetches its files: the same user or client, and for a SMART
    token the same app and patient context (a token narrows: another record's token must not read it)."""
    if p.master:
        return True
    owner = job.principal
    if owner.get("master") or (owner.get("user_id"), owner.get("client_id")) != (p.user_id, p.client_id):
        return False
    smart = owner.get("smart")
    if smart is None or p.smart is None:
        return smart is None and p.smart is None
    return (p.smart.client_id, p.smart.patient_id) == (smart.get("client_id"), smart.get("patient_id"))


# ---- kick-off, status, cancel, files ----

def kick_off(session: Session, p: Principal, level: str, params: dict[str, list[str]], request_url: str, *,
             group_id: str | None = None, lenient: bool = False) -> ExportJob:
    if not p.authenticated:
        raise Forbidden("Bulk export needs an authenticated client")
    unknown = sorted(set(params) - SUPPORTED)
    if unknown and not lenient:
        raise InvalidInput(f"Unsupported $export parameter(s): {', '.join(unknown)}")
    # An unencoded "+" in a query string arrives as a space (application/fhir ndjson): same format.
    fmt = (params.get("_outputFormat") or ["application/fhir+ndjson"])[-1].replace(" ", "+")
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson")
    types = [t for v in params.get("_type", []) for t in v.split(",") if t.strip()]
    bad = [t for t in types if t not in RESOURCE_TYPES and t != "Binary"]
    if bad and not lenient:
        raise InvalidInput(f"Unknown resource type(s) in _type: {', '.join(bad)}")
    if "Binary" in types and "DocumentReference" not in types:
        types.append("DocumentReference")  # documents travel as DocumentReference (SMART.md, Bulk Data)
    # Asked-for types that are all unknown (lenient) export nothing, never everything.
    types = [t for t in dict.fromkeys(types) if t in RESOURCE_TYPES] if types else \
        [t for t in RESOURCE_TYPES if level == "system" or t not in SYSTEM_ONLY]
    since = (params.get("_since") or [None])[-1]
    if since and date_range(since) is None:
        raise InvalidInput(f"_since {since!r} is not a FHIR instant")
    filters: dict[str, list[str]] = {}
    for raw in params.get("_typeFilter", []):
        for item in raw.split(","):
            rt, _, query = item.partition("?")
            if rt not in RESOURCE_TYPES or not query:
                raise InvalidInput(f"_typeFilter {item!r} must look like Type?param=value")
            parse_search(rt, _query_items(query))  # unknown parameters are a 400 now, not a failed job
            filters.setdefault(rt, []).append(query)
    elements = [e for v in params.get("_elements", []) for e in v.split(",") if e]
    patients = [ref.split("/")[-1] for v in params.get("patient", []) for ref in v.split(",") if ref]
    if level == "group":
        _check_group(session, p, group_id)
    now = utcnow()
    job = ExportJob(
        id=secrets.token_hex(16), level=level, group_id=group_id, request_url=request_url,
        params={"types": types, "since": since, "filters": filters, "elements": elements, "patients": patients},
        principal=principal_json(p), status="queued", created_at=now, cursor={}, errors=[], requires_token=True,
    )
    session.add(job)
    audit.record(session, p, "export", "Bulk", job.id, details={"level": level, "types": types})
    session.flush()
    return job


def _check_group(session: Session, p: Principal, group_id: str | None) -> None:
    """A provider's Group is the patients who granted it access; only that provider (or master) exports it."""
    if not p.master and group_id not in p.provider_ids:
        raise NotFound(f"Group/{group_id} is not known")


def group_members(session: Session, provider_id: str) -> list[str]:
    grantee = Principal(provider_ids=frozenset({provider_id}))
    return list(session.scalars(select(SharedAccess.profile_id).where(access.active_grants(grantee)).distinct()))


def get_job(session: Session, p: Principal, job_id: str) -> ExportJob:
    job = session.get(ExportJob, job_id)
    if job is None or job.status == "cancelled" or not _owner_matches(job, p):
        raise NotFound("No such export")
    if job.expires_at is not None and job.expires_at <= utcnow():
        raise NotFound("This export has expired")
    return job


def poll(session: Session, p: Principal, job_id: str) -> tuple[ExportJob, bool]:
    """The job, and whether the client polled too soon (429)."""
    job = get_job(session, p, job_id)
    now = utcnow()
    too_soon = job.status in ("queued", "running") and job.last_polled_at is not None \
        and now - job.last_polled_at < MIN_POLL_INTERVAL
    job.last_polled_at = now
    return job, too_soon


def cancel(session: Session, p: Principal, job_id: str) -> None:
    job = get_job(session, p, job_id)
    job.status = "cancelled"
    session.execute(delete(ExportFile).where(ExportFile.job_id == job.id))


def file_for(session: Session, p: Principal, job_id: str, file_id: str) -> ExportFile:
    job = get_job(session, p, job_id)
    if job.status != "completed":
        raise NotFound("The export is not complete")
    f = session.get(ExportFile, file_id)
    if f is None or f.job_id != job.id:
        raise NotFound("No such file")
    if _grant_ended_since(session, principal_from(job.principal), job.transaction_time):
        raise Gone("A sharing grant this export relied on has ended since it ran; start a new export")
    return f


def _grant_ended_since(session: Session, p: Principal, since: datetime | None) -> bool:
    """Did any grant to this principal end (revoked, expired, deleted) after the export's snapshot?
    Expiry and revocation take effect at once: files not yet fetched stop being served."""
    if p.master or since is None or not (p.user_id or p.provider_ids):
        return False
    from sqlalchemy import or_

    now = utcnow()
    ended = or_(SharedAccess.revoked_at > since, SharedAccess.deleted_at > since,
                and_(SharedAccess.expires_at > since, SharedAccess.expires_at <= now))
    return session.scalar(select(SharedAccess.object_id).where(access.grants_to(p), ended).limit(1)) is not None


def manifest(session: Session, job: ExportJob, base: str) -> dict[str, Any]:
    files = session.execute(select(ExportFile.id, ExportFile.kind, ExportFile.resource_type, ExportFile.count)
                            .where(ExportFile.job_id == job.id)
                            .order_by(ExportFile.kind, ExportFile.resource_type, ExportFile.seq)).all()

    def url(fid: str) -> str:
        return f"{base}/bulk/{job.id}/file/{fid}"

    return {
        "transactionTime": job.transaction_time.isoformat().replace("+00:00", "Z") if job.transaction_time else None,
        "request": job.request_url,
        "requiresAccessToken": job.requires_token,
        "output": [{"type": t, "url": url(i), "count": c} for i, k, t, c in files if k == "output"],
        "deleted": [{"type": "Bundle", "url": url(i), "count": c} for i, k, t, c in files if k == "deleted"],
        "error": [{"type": "OperationOutcome", "url": url(i)} for i, k, t, c in files if k == "error"],
    }


# ---- the runner (workers) ----

def claim_next(factory: sessionmaker[Session], worker_id: str) -> str | None:
    """Atomically claim one queued job, or a running one whose worker stopped heart-beating."""
    with factory() as session:
        now = utcnow()
        candidates = session.scalars(select(ExportJob.id).where(
            (ExportJob.status == "queued")
            | ((ExportJob.status == "running") & (ExportJob.heartbeat_at < now - STALE_AFTER))
        ).order_by(ExportJob.created_at).limit(5)).all()
        for job_id in candidates:
            claimed = session.execute(update(ExportJob).where(
                ExportJob.id == job_id,
                (ExportJob.status == "queued")
                | ((ExportJob.status == "running") & (ExportJob.heartbeat_at < now - STALE_AFTER)),
            ).values(status="running", claimed_by=worker_id, heartbeat_at=now,
                     attempts=ExportJob.attempts + 1)).rowcount
            session.commit()
            if claimed:
                return job_id
    return None


def _query_items(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def _patients(session: Session, job: ExportJob) -> list[str] | str | None:
    """None: no patient restriction (system level); "compartment": every patient the principal may see;
    else the list of profile ids (a Group's members, or the `patient` parameter)."""
    wanted = job.params.get("patients") or []
    if job.level == "system":
        return None
    if job.level == "group":
        members = group_members(session, job.group_id)
        return [m for m in members if not wanted or m in wanted]
    return wanted or "compartment"


def _select(job: ExportJob, p: Principal, rt: str, patients: list[str] | None, base: str, *, deleted: bool):
    R = FhirResource
    conds = [R.resource_type == rt, R.deleted.is_(deleted), access.fhir_read_filter(p, R, letter="r")]
    if patients == "compartment":
        conds.append(R.profile_id.is_not(None))
    elif patients is not None:
        conds.append(R.profile_id.in_(patients) if rt != "Patient" else R.id.in_(patients))
    since = job.params.get("since")
    if since:
        conds.append(R.last_updated >= date_range(since)[0])
    if job.transaction_time is not None:
        conds.append(R.last_updated <= job.transaction_time)
    queries = job.params.get("filters", {}).get(rt)
    if queries and not deleted:
        compiler = Compiler(lambda A: access.fhir_read_filter(p, A, letter="s"), base)
        options = [compiler.predicate(R, parse_search(rt, _query_items(q))) for q in queries]
        from sqlalchemy import or_

        conds.append(or_(*options))
    return conds


def run_job(factory: sessionmaker[Session], job_id: str, worker_id: str, base: str) -> None:
    """Export one job to the end (or until cancelled), resuming from its saved cursor."""
    with factory() as w:
        job = w.get(ExportJob, job_id)
        if job is None or job.status != "running" or job.claimed_by != worker_id:
            return
        if job.attempts > MAX_ATTEMPTS:
            _finish_with_error(w, job, "The export failed repeatedly and was stopped", factory)
            return
        if job.transaction_time is None:
            job.transaction_time = utcnow()
            w.commit()
        p = principal_from(job.principal)
        cursor = dict(job.cursor or {})
    with read_only_session(factory) as reader:
        patients = _patients(reader, job)
        for kind in ("output", "deleted"):
            if kind == "deleted" and not job.params.get("since"):
                continue
            for rt in job.params["types"]:
                key = f"{kind}:{rt}"
                state = cursor.get(key, {"after": "", "seq": 0, "done": False})
                if state["done"]:
                    continue
                try:
                    for state in _export_type(factory, reader, job, p, rt, patients, base, kind, state, cursor, key):
                        if state is None:
                            return  # cancelled
                except Exception as e:  # one type failing becomes an OperationOutcome; the rest goes on
                    import logging

                    logging.getLogger("gateway.jobs").warning("export of %s failed: %s", rt, type(e).__name__,
                                                              exc_info=True)
                    reader.rollback()
                    _add_error(factory, job_id, rt, f"Exporting {rt} failed: {type(e).__name__}")
                    cursor[key] = {**state, "done": True}
    with factory() as w:
        current = w.get(ExportJob, job_id)
        if current is not None and current.status == "running":
            current.status = "completed"
            current.cursor = cursor
            current.finished_at = utcnow()
            current.expires_at = current.finished_at + EXPORT_TTL
            current.progress = "complete"
            w.commit()


def _export_type(factory, reader: Session, job: ExportJob, p: Principal, rt: str, patients, base: str, kind: str,
                 state: dict[str, Any], cursor: dict[str, Any], key: str) -> Iterator[dict[str, Any] | None]:
    """Stream one type into files; each file and the resume point are committed together."""
    R = FhirResource
    conds = _select(job, p, rt, patients, base, deleted=(kind == "deleted"))
    if state["after"]:
        conds.append(R.id > state["after"])
    stmt = select(R.id, R.body).where(and_(*conds)).order_by(R.id).execution_options(yield_per=2000)
    elements = _elements_for(rt, job.params.get("elements") or [])
    # Patient.contact is the 'contacts' category: a Patient may be shared without it.
    contacts_ok = None
    if rt == "Patient" and not p.master:
        contacts_ok = set(reader.scalars(select(Profile.object_id).where(or_(
            Profile.object_id.in_(access.owned_profiles(p)),
            Profile.object_id.in_(access.granted_profiles(p, category="contacts"))))))
    buffer, lines, last = bytearray(), 0, state["after"]
    count_total = state.get("count", 0)
    for rid, body in reader.execute(stmt):
        if kind == "deleted":
            line = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"request": {"method": "DELETE", "url": f"{rt}/{rid}"}}]})
        elif elements or (contacts_ok is not None and rid not in contacts_ok and '"contact"' in body):
            resource = orjson.loads(body)
            if contacts_ok is not None and rid not in contacts_ok:
                resource.pop("contact", None)
            line = orjson.dumps(subset(resource, None, elements) if elements else resource)
        else:
            line = body.encode()
        buffer += line
        buffer += b"\n"
        lines += 1
        last = rid
        if lines >= FILE_LINES or len(buffer) >= FILE_BYTES:
            count_total += lines
            state = _write_file(factory, job.id, kind, rt, buffer, lines, cursor, key,
                                {"after": last, "seq": state["seq"] + 1, "done": False, "count": count_total},
                                owner=job.claimed_by)
            buffer, lines = bytearray(), 0
            yield state
    count_total += lines
    yield _write_file(factory, job.id, kind, rt, buffer, lines, cursor, key,
                      {"after": last, "seq": state["seq"] + (1 if lines else 0), "done": True, "count": count_total},
                      owner=job.claimed_by)


def _elements_for(rt: str, elements: list[str]) -> list[str] | None:
    """The `_elements` that apply to one type: "[element]" applies to every type, "[type].[element]" to
    that type only; a type named by neither is exported whole (Bulk Data 2.0, kick-off parameters)."""
    out = [e for e in elements if "." not in e] + [e.split(".", 1)[1] for e in elements if e.startswith(rt + ".")]
    return out or None


def _write_file(factory, job_id: str, kind: str, rt: str, buffer: bytearray, lines: int, cursor: dict[str, Any],
                key: str, new_state: dict[str, Any], owner: str | None = None) -> dict[str, Any] | None:
    """Commit one file (if any lines) and the job's resume point in one transaction; None if cancelled, or
    if another worker has taken the job over (this one looked dead): writing on would duplicate lines."""
    with factory() as w:
        job = w.get(ExportJob, job_id)
        if job is None or job.status != "running" or (owner is not None and job.claimed_by != owner):
            return None
        if lines:
            w.add(ExportFile(id=secrets.token_hex(16), job_id=job_id, kind=kind, resource_type=rt,
                             seq=new_state["seq"], count=lines, data=bytes(buffer)))
        cursor[key] = new_state
        job.cursor = dict(cursor)
        job.heartbeat_at = utcnow()
        job.progress = f"{sum(s.get('count', 0) for s in cursor.values())} resources exported"
        w.commit()
    return new_state


def _add_error(factory, job_id: str, rt: str, text: str) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception",
                                                               "diagnostics": text}]}
    with factory() as w:
        seq = len(w.scalars(select(ExportFile.id).where(ExportFile.job_id == job_id, ExportFile.kind == "error")).all())
        w.add(ExportFile(id=secrets.token_hex(16), job_id=job_id, kind="error", resource_type="OperationOutcome",
                         seq=seq + 1, count=1, data=orjson.dumps(outcome) + b"\n"))
        w.commit()


def _finish_with_error(w: Session, job: ExportJob, text: str, factory: sessionmaker[Session]) -> None:
    job.status = "completed"
    job.finished_at = utcnow()
    job.expires_at = job.finished_at + EXPORT_TTL
    job.progress = "stopped"
    w.commit()
    _add_error(factory, job.id, "OperationOutcome", text)


def cleanup_expired(session: Session, now: datetime | None = None) -> int:
    now = now or utcnow()
    expired = session.scalars(select(ExportJob.id).where(
        ((ExportJob.expires_at.is_not(None)) & (ExportJob.expires_at <= now)) | (ExportJob.status == "cancelled"))).all()
    if expired:
        session.execute(delete(ExportFile).where(ExportFile.job_id.in_(expired)))
        # A cancelled job's row stays a while (a worker still running it sees "cancelled" and stops), then goes.
        session.execute(delete(ExportJob).where(ExportJob.id.in_(expired), (ExportJob.status != "cancelled")
                                                | (ExportJob.created_at <= now - EXPORT_TTL)))
    return len(expired)
