"""Bulk Data $export endpoints: kick-off at system, Patient and Group level, status polling, cancel, and
the NDJSON files (hl7.org/fhir/uv/bulkdata/export.html)."""
from __future__ import annotations

from flask import Response, request

from gateway.errors import InvalidInput
from gateway.extensions import db
from gateway.fhir.auth import current_principal, require
from gateway.fhir.http import base_url, body_json, prefer, respond
from gateway.fhir.outcomes import outcome
from gateway.services import bulk, file_types


def _params() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.args.items(multi=True):
        out.setdefault(k, []).append(v)
    if request.method == "POST" and request.get_data():
        body = body_json()
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidInput("A POST kick-off body must be a Parameters resource")
        for param in body.get("parameter", []):
            value = next((param[k] for k in param if k.startswith("value")), None)
            if isinstance(value, dict):  # valueReference (the `patient` parameter): its reference
                value = value.get("reference")
            if value is not None:
                out.setdefault(param["name"], []).append(str(value))
    return out


def _kick_off(level: str, group_id: str | None = None) -> Response:
    p = require(current_principal())
    if prefer().get("respond-async") is None and "respond-async" not in request.headers.get("Prefer", ""):
        raise InvalidInput("$export needs the header Prefer: respond-async")
    # The manifest's `request` is the kick-off URL as the client sees it (the public base, not our host).
    asked = base_url() + request.full_path.removeprefix("/fhir").rstrip("?")
    job = bulk.kick_off(db.session, p, level, _params(), asked, group_id=group_id,
                        lenient=prefer().get("handling") == "lenient")
    db.session.commit()
    return Response(status=202, headers={"Content-Location": f"{base_url()}/bulk/{job.id}"})


def export_system() -> Response:
    """[base]/$export"""
    return _kick_off("system")


def export_patient() -> Response:
    """[base]/Patient/$export"""
    return _kick_off("patient")


def export_group(gid: str) -> Response:
    """[base]/Group/[id]/$export: the patients who granted access to that provider."""
    return _kick_off("group", gid)


def status(job_id: str) -> Response:
    """Poll: 202 with X-Progress while running, 429 when polled too fast, 200 with the manifest."""
    p = require(current_principal())
    job, too_soon = bulk.poll(db.session, p, job_id)
    db.session.commit()
    if too_soon:
        return respond(outcome("error", "throttled", "Polled too soon; honour Retry-After"), 429, {"Retry-After": "1"})
    if job.status in ("queued", "running"):
        return Response(status=202, headers={"X-Progress": job.progress or job.status, "Retry-After": "1"})
    # Bulk Data 2.0 "Response - Complete Status": 200 with Content-Type application/json.
    resp = respond(bulk.manifest(db.session, job, base_url()), 200, {"Expires": job.expires_at.strftime(
        "%a, %d %b %Y %H:%M:%S GMT") if job.expires_at else ""})
    resp.content_type = "application/json"
    return resp


def cancel(job_id: str) -> Response:
    """Cancel (and delete) an export: 202, then its status answers 404."""
    bulk.cancel(db.session, require(current_principal()), job_id)
    db.session.commit()
    return respond(outcome("information", "informational", "The export was cancelled"), 202)


def download(job_id: str, file_id: str) -> Response:
    """One NDJSON file; needs the token of whoever started the export."""
    f = bulk.file_for(db.session, require(current_principal()), job_id, file_id)
    data = f.data
    db.session.commit()
    return Response(data, content_type="application/fhir+ndjson", headers=file_types.SAFE_HEADERS)
