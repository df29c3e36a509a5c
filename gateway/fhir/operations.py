"""Binary (a document's file, raw or as a Binary resource) and $validate."""
from __future__ import annotations

import base64

from flask import Response, request
from sqlalchemy import and_, select

from gateway import access
from gateway.errors import NotFound
from gateway.extensions import db
from gateway.fhir import validation
from gateway.fhir.auth import current_principal, require
from gateway.fhir.http import body_json, respond
from gateway.fhir.outcomes import information
from gateway.models import MedicalDocument, RecordVersion, StoredFile
from gateway.services import file_types
from gateway.services.fhir_read import FhirReader
from gateway.services.files import response_headers
from gateway.fhir.http import base_url
from gateway.storage import blob_store
from mappings import binary as binary_mapping


def binary_read(rid: str) -> Response:
    """The file of a document version: raw bytes in its own content type, or a Binary resource when the
    client asks for FHIR JSON. Needs the right to read the DocumentReference."""
    p = require(current_principal())
    doc_id, version = binary_mapping.parse_binary_id(rid)
    reader = FhirReader(db.session, p, base_url())
    reader.read("DocumentReference", doc_id)  # access check and audit; NotFound/Gone otherwise
    doc = db.session.scalar(select(MedicalDocument).where(
        MedicalDocument.object_id == doc_id, access.read_filter(MedicalDocument, p)))
    if doc is None:
        raise NotFound(f"Binary/{rid} is not known")
    name = doc.file_name
    if version is not None and version != doc.doc_version:
        snapshots = db.session.scalars(select(RecordVersion.data).where(and_(
            RecordVersion.class_name == "MedicalDocument", RecordVersion.object_id == doc_id)))
        name = next((d["file"]["name"] for d in snapshots if d.get("version") == version and d.get("file")), None)
        if name is None:
            raise NotFound(f"Binary/{rid} is not known")
    stored = db.session.get(StoredFile, name)
    data = blob_store.get(db.session, name) if stored else None
    db.session.commit()
    if stored is None or data is None:
        raise NotFound(f"Binary/{rid} has no content")
    accept = request.headers.get("Accept", "")
    if "fhir+json" in accept or request.args.get("_format") in ("json", "application/fhir+json"):
        binary = {"resourceType": "Binary", "id": rid, "contentType": stored.content_type,
                  "data": base64.b64encode(data).decode()}
        return respond(binary, headers={**file_types.SAFE_HEADERS, "Cache-Control": "private, no-store"})
    content_type, headers = response_headers(stored, data)
    return Response(data, content_type=content_type, headers=headers)


def validate(rt: str) -> Response:
    """$validate: the resource (or a Parameters wrapping it) checked as write input would be."""
    require(current_principal())
    body = body_json()
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        params = body.get("parameter")
        named = [p for p in params if isinstance(p, dict)] if isinstance(params, list) else []
        body = next((p.get("resource") for p in named if p.get("name") == "resource"), None)
    issues = validation.problems(body, rt)
    if issues:
        return respond({"resourceType": "OperationOutcome", "issue": issues}, 200)
    return respond(information("The resource is valid"))
