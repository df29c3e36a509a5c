"""The FHIR face's HTTP plumbing: responses in application/fhir+json, request bodies, Prefer handling."""
from __future__ import annotations

from email.utils import format_datetime
from typing import Any

import orjson
from flask import Response, current_app, request

from gateway.errors import InvalidInput
from gateway.fhir.outcomes import FHIR_JSON, information
from gateway.models import FhirHistory, FhirResource
from gateway.services.inputs import check_depth

JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json", "text/json")


def base_url() -> str:
    return current_app.config["BASE_URL"] + "/fhir"


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, (bytes, str)) else orjson.dumps(body)
    resp = Response(data, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    resp.headers.update(headers or {})
    return resp


def resource_headers(row: FhirResource | FhirHistory) -> dict[str, str]:
    return {
        "ETag": f'W/"{row.version_id}"',
        "Last-Modified": format_datetime(row.last_updated, usegmt=True),
        "Content-Location": f"{base_url()}/{row.resource_type}/{row.id}/_history/{row.version_id}",
    }


def body_json() -> Any:
    ctype = (request.mimetype or "").lower()
    if ctype and ctype not in JSON_TYPES:
        raise InvalidInput(f"Content-Type {ctype} is not supported; send application/fhir+json")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidInput("The request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"The body is not valid JSON: {e}") from None
    return check_depth(body, "The body")


def prefer() -> dict[str, str]:
    out = {}
    for part in request.headers.get("Prefer", "").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key:
                out[key.lower()] = value.strip('"').lower()
    return out


def written(row: FhirResource, status: int) -> Response:
    """A create/update answer honouring Prefer: return=minimal | representation | OperationOutcome."""
    headers = resource_headers(row)
    headers["Location"] = headers["Content-Location"]
    want = prefer().get("return", "representation")
    if want == "minimal":
        return respond(b"", status, headers)
    if want == "operationoutcome":
        return respond(information(f"{row.resource_type}/{row.id} stored as version {row.version_id}"), status,
                       headers)
    return respond(row.body, status, headers)
