"""Bundles (searchset, history) and the element filters `_summary` and `_elements`. Stored resources are
spliced in as pre-serialized JSON (orjson.Fragment): a search does not parse what it serves unless the
client asked for a subset."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from gateway.fhir.outcomes import outcome
from gateway.models import FhirHistory, FhirResource
from gateway.services.codec import iso

SUMMARY_SOURCE = Path(__file__).resolve().parents[2] / "conformance" / "summary-elements.r4.json"
MANDATORY_SOURCE = Path(__file__).resolve().parents[2] / "conformance" / "mandatory-elements.r4.json"
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements() -> dict[str, set[str]]:
    return {k: set(v) for k, v in json.loads(SUMMARY_SOURCE.read_text())["elements"].items()}


@cache
def mandatory_elements() -> dict[str, set[str]]:
    return {k: set(v) for k, v in json.loads(MANDATORY_SOURCE.read_text())["elements"].items()}


def subset(resource: dict[str, Any], summary: str | None, elements: list[str] | None) -> dict[str, Any]:
    """Apply `_summary` (true, text, data, false) and `_elements`; subsets are tagged SUBSETTED."""
    rt = resource.get("resourceType", "")
    if elements:
        # R4 search.html#elements: "Servers SHOULD always return mandatory elements whether they are
        # requested or not", so that the subset still parses.
        keep = set(_ALWAYS) | set(elements) | mandatory_elements().get(rt, set())
    elif summary == "true":
        keep = set(_ALWAYS) | summary_elements().get(rt, set())
    elif summary == "text":
        keep = set(_ALWAYS) | {"text"}
    elif summary == "data":
        keep = set(resource) - {"text"}
    else:
        return resource
    out = {k: v for k, v in resource.items() if k in keep or any(k.startswith(e) and k[len(e):][:1].isupper()
                                                                  for e in keep)}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    out["meta"] = meta
    return out


def resource_json(row: FhirResource | FhirHistory, summary: str | None = None,
                  elements: list[str] | None = None) -> Any:
    """The stored body, as a Fragment when served whole, else filtered."""
    if not summary and not elements or summary == "false":
        return orjson.Fragment(row.body)
    return subset(orjson.loads(row.body), summary, elements)


def searchset(base: str, rt: str, matches: list[FhirResource], includes: list[FhirResource], *,
              total: int | None, links: dict[str, str], summary: str | None = None,
              elements: list[str] | None = None, warnings: list[str] | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = [{"relation": rel, "url": url} for rel, url in links.items()]
    entries = [{"fullUrl": f"{base}/{r.resource_type}/{r.id}", "resource": resource_json(r, summary, elements),
                "search": {"mode": "match"}} for r in matches]
    entries += [{"fullUrl": f"{base}/{r.resource_type}/{r.id}", "resource": resource_json(r, summary, elements),
                 "search": {"mode": "include"}} for r in includes]
    if warnings:
        entries.append({"resource": outcome("warning", "not-supported", "; ".join(warnings)),
                        "search": {"mode": "outcome"}})
    if entries:
        bundle["entry"] = entries
    return bundle


def history(base: str, rows: list[FhirHistory], self_url: str) -> dict[str, Any]:
    entries = []
    for h in rows:
        url = f"{h.resource_type}/{h.id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        if not h.deleted and h.body:
            entry["resource"] = orjson.Fragment(h.body)
        entry["request"] = {"method": {"create": "POST", "update": "PUT", "delete": "DELETE"}[h.method],
                            "url": h.resource_type if h.method == "create" else url}
        entry["response"] = {"status": {"create": "201 Created", "update": "200 OK", "delete": "204 No Content"}[h.method],
                             "etag": f'W/"{h.version_id}"', "lastModified": iso(h.last_updated)}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "history", "total": len(rows),
                              "link": [{"relation": "self", "url": self_url}]}
    if entries:
        bundle["entry"] = entries
    return bundle


def page_url(base: str, path: str, items: list[tuple[str, str]], **extra: str) -> str:
    kept = [(k, v) for k, v in items if k not in ("_cursor", "_dir")]
    kept += [(k, v) for k, v in extra.items() if v]
    query = urlencode(kept)
    return f"{base}/{path}" + (f"?{query}" if query else "")
