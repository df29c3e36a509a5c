"""FHIR interactions: each view parses the request, calls a service, and answers (thin views)."""
from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from flask import Response, request

from gateway.access import Principal
from gateway.errors import NotFound
from gateway.extensions import commit, db
from gateway.fhir import bundles
from gateway.fhir.auth import current_principal, require
from gateway.fhir.http import base_url, body_json, prefer, resource_headers, respond, written
from gateway.fhir.params import RESOURCE_TYPES
from gateway.services.fhir_read import FhirReader
from gateway.services.fhir_write import FhirWriter


def _known(rt: str) -> str:
    if rt not in RESOURCE_TYPES:
        raise NotFound(f"Resource type {rt} is not served here")
    return rt


def reader() -> FhirReader:
    return FhirReader(db.session, require(current_principal()), base_url())


def writer() -> FhirWriter:
    return FhirWriter(db.session, require(current_principal()), base_url())


def read(rt: str, rid: str) -> Response:
    """Read the current version."""
    return answer_read(current_principal(), rt, rid, request.args.get("_summary"), _elements())


def answer_read(p: Principal, rt: str, rid: str, summary: str | None = None,
                elements: list[str] | None = None) -> Response:
    """The read's answer, for the route and for the front that serves plain reads before Flask
    (gateway/fhir/wsgi.py)."""
    row = FhirReader(db.session, require(p), base_url()).read(_known(rt), rid)
    commit(db.session)
    if summary or elements:
        return respond(bundles.subset(orjson.loads(row.body), summary, elements), 200, resource_headers(row))
    return respond(row.body, 200, resource_headers(row))


def vread(rt: str, rid: str, vid: str) -> Response:
    """Read one version."""
    row = reader().vread(_known(rt), rid, vid)
    commit(db.session)
    return respond(row.body, 200, resource_headers(row))


def _elements() -> list[str] | None:
    raw = ",".join(request.args.getlist("_elements"))
    return [e.strip() for e in raw.split(",") if e.strip()] or None


def search(rt: str) -> Response:
    """Search (GET, or POST to _search with a form body)."""
    items = list(request.args.items(multi=True))
    if request.method == "POST":
        items += list(request.form.items(multi=True))
    return run_search(_known(rt), items, f"{rt}")


def run_search(rt: str, items: list[tuple[str, str]], path: str, extra=None) -> Response:
    lenient = prefer().get("handling") == "lenient"
    page, parsed = reader().search(rt, items, lenient=lenient, extra=extra)
    commit(db.session)
    base = base_url()
    links = {"self": bundles.page_url(base, path, items)}
    if page.next_cursor:
        links["next"] = bundles.page_url(base, path, items, _cursor=page.next_cursor)
    if page.prev_cursor:
        links["previous"] = bundles.page_url(base, path, items, _cursor=page.prev_cursor, _dir="prev")
    summary = parsed.controls.get("_summary", [None])[-1]
    elements = [e for v in parsed.controls.get("_elements", []) for e in v.split(",") if e] or None
    warnings = [f"Unknown search parameter '{k}' was ignored" for k in page.outcome_ignored]
    return respond(bundles.searchset(base, rt, page.matches, page.includes, total=page.total, links=links,
                                     summary=summary, elements=elements, warnings=warnings))


def create(rt: str) -> Response:
    """Create (with If-None-Exist for a conditional create)."""
    resource, condition = body_json(), request.headers.get("If-None-Exist")
    if condition:
        row, created = writer().conditional_create(_known(rt), resource, parse_qsl(condition))
    else:
        row, created = writer().create(_known(rt), resource), True
    db.session.commit()
    if not created:
        return respond(row.body if prefer().get("return") != "minimal" else b"", 200, resource_headers(row))
    return written(row, 201)


def update(rt: str, rid: str) -> Response:
    """Update, or create under the given id."""
    row, created = writer().update(_known(rt), rid, body_json(), if_match=request.headers.get("If-Match"))
    db.session.commit()
    return written(row, 201 if created else 200)


def conditional_update(rt: str) -> Response:
    """PUT [type]?criteria: update the one match, create when there is none."""
    row, created = writer().conditional_update(_known(rt), body_json(), list(request.args.items(multi=True)),
                                               if_match=request.headers.get("If-Match"))
    db.session.commit()
    return written(row, 201 if created else 200)


def patch(rt: str, rid: str) -> Response:
    """JSON Patch."""
    row = writer().patch(_known(rt), rid, body_json(), if_match=request.headers.get("If-Match"))
    db.session.commit()
    return written(row, 200)


def delete(rt: str, rid: str) -> Response:
    """Delete (later reads answer 410 Gone)."""
    writer().delete(_known(rt), rid)
    db.session.commit()
    return Response(status=204)


def history_instance(rt: str, rid: str) -> Response:
    """History of one resource."""
    rows = reader().history(_known(rt), rid, _controls())
    db.session.commit()
    return respond(bundles.history(base_url(), rows, request.url))


def history_type(rt: str) -> Response:
    """History of all resources of a type (what the caller may see)."""
    rows = reader().history(_known(rt), None, _controls())
    db.session.commit()
    return respond(bundles.history(base_url(), rows, request.url))


def history_system() -> Response:
    """History of everything the caller may see."""
    rows = reader().history(None, None, _controls())
    db.session.commit()
    return respond(bundles.history(base_url(), rows, request.url))


def _controls() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.args.items(multi=True):
        out.setdefault(k, []).append(v)
    return out


def everything(rid: str) -> Response:
    """Patient/[id]/$everything: the patient's record as a searchset Bundle, paged."""
    controls = _controls()
    rows, cursor = reader().everything(rid, controls)
    db.session.commit()
    base = base_url()
    items = list(request.args.items(multi=True))
    path = f"Patient/{rid}/$everything"
    links = {"self": bundles.page_url(base, path, items)}
    if cursor:
        links["next"] = bundles.page_url(base, path, items, _cursor=cursor)
    return respond(bundles.searchset(base, "Patient", rows, [], total=None, links=links))
