"""MedicalDocument <-> DocumentReference (hl7.org/fhir/R4/documentreference.html).

documentType -> type (LOINC document type when known); title -> content[0].attachment.title;
description -> description; uploadedAt -> date (an instant) and attachment.creation; file -> attachment
(contentType, size, hash = the File's base64 SHA-1, url = our Binary, file name in our `file-name`
extension); tags -> category (one text-only concept per tag); isShared and version -> our extensions.
status is "current", or "superseded" when the caller renders an older version (`superseded=True`).
The native File url is made by the native face from the file name, so from_fhir returns the File
without our Binary url (it keeps a foreign url).
"""

from __future__ import annotations

from typing import Any

from . import extensions as ext
from . import lossless
from .binary import binary_url
from .context import DEFAULT, MappingContext
from .native import date_value, fhir_instant, patient_reference, profile_pointer, prune
from .terminology import DOCUMENT_TYPES, codeable, concept_text

RESOURCE_TYPE = "DocumentReference"
CLASS_NAME = "MedicalDocument"
# Native fields the resource does not carry (`version` is the document version here, an extension).
NATIVE_ONLY = ("createdAt", "updatedAt", "ACL")

ELEMENTS: dict[str, tuple[str, ...]] = {
    "extension:" + ext.DOCUMENT_SHARED: ("isShared",),
    "extension:" + ext.DOCUMENT_VERSION: ("version",),
    "status": ("_superseded",),  # pseudo column: the caller's `superseded` flag
    "type": ("documentType",),
    "category": ("tags",),
    "subject": ("profile",),
    "date": ("uploadedAt",),
    "description": ("description",),
    "content": ("file", "title", "uploadedAt", "version"),
}


def _attachment(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    file = record.get("file") or {}
    attachment: dict[str, Any] = {}
    if file.get("name"):
        attachment["extension"] = [{"url": ctx.extension_url(ext.FILE_NAME), "valueString": file["name"]}]
    if file.get("contentType"):
        attachment["contentType"] = file["contentType"]
    if record.get("objectId"):
        attachment["url"] = binary_url(record, ctx)
    elif file.get("url"):
        attachment["url"] = file["url"]
    if file.get("size") is not None:
        attachment["size"] = file["size"]
    if file.get("hash"):
        attachment["hash"] = file["hash"]
    if record.get("title"):
        attachment["title"] = record["title"]
    if record.get("uploadedAt"):
        attachment["creation"] = fhir_instant(record["uploadedAt"])
    return attachment


def _build(record: dict[str, Any], ctx: MappingContext, *, superseded: bool = False) -> dict[str, Any]:
    extensions = []
    if record.get("isShared") is not None:
        extensions.append({"url": ctx.extension_url(ext.DOCUMENT_SHARED), "valueBoolean": record["isShared"]})
    if record.get("version") is not None:
        extensions.append(
            {"url": ctx.extension_url(ext.DOCUMENT_VERSION), "valuePositiveInt": record["version"]}
        )
    body: dict[str, Any] = {"extension": extensions} if extensions else {}
    body["status"] = "superseded" if superseded else "current"
    doc_type = codeable(record.get("documentType"), DOCUMENT_TYPES.lookup(record.get("documentType")))
    if doc_type:
        body["type"] = doc_type
    if record.get("tags"):
        body["category"] = [{"text": tag} for tag in record["tags"]]
    if patient_reference(record):
        body["subject"] = patient_reference(record)
    if record.get("uploadedAt"):
        body["date"] = fhir_instant(record["uploadedAt"])
    if record.get("description"):
        body["description"] = record["description"]
    body["content"] = [{"attachment": _attachment(record, ctx)}]
    return body


def _file(attachment: dict[str, Any], ctx: MappingContext) -> dict[str, Any] | None:
    name = next(
        (
            e.get("valueString")
            for e in attachment.get("extension", [])
            if e.get("url") == ctx.extension_url(ext.FILE_NAME)
        ),
        None,
    )
    url = attachment.get("url")
    ours = bool(url) and url.startswith(f"{ctx.base}/Binary/")
    file = prune(
        {
            "__type": "File",
            "name": name or attachment.get("title"),
            "url": None if ours else url,
            "contentType": attachment.get("contentType"),
            "size": attachment.get("size"),
            "hash": attachment.get("hash"),
        }
    )
    return file if len(file) > 1 else None


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    extensions = {e.get("url"): e for e in resource.get("extension", [])}
    shared = extensions.get(ctx.extension_url(ext.DOCUMENT_SHARED), {}).get("valueBoolean")
    version = extensions.get(ctx.extension_url(ext.DOCUMENT_VERSION), {}).get("valuePositiveInt")
    attachment = ((resource.get("content") or [{}])[0]).get("attachment") or {}
    tags = [concept_text(c) for c in resource.get("category", [])]
    return prune(
        {
            "profile": profile_pointer(resource.get("subject")),
            "file": _file(attachment, ctx),
            "documentType": concept_text(resource.get("type")),
            "title": attachment.get("title"),
            "description": resource.get("description"),
            "tags": [t for t in tags if t],
            "uploadedAt": date_value(resource.get("date") or attachment.get("creation")),
            "isShared": shared,
            "version": version,
        }
    )


def to_fhir(
    record: dict[str, Any], ctx: MappingContext = DEFAULT, *, superseded: bool = False
) -> dict[str, Any]:
    """MedicalDocument -> DocumentReference. `version` is the document's file version (our extension),
    not meta.versionId."""
    return lossless.to_fhir(
        RESOURCE_TYPE,
        record,
        _build,
        _columns,
        ELEMENTS,
        ctx,
        version_in_meta=False,
        current_extra={"_superseded": superseded},
        derived_extra=lambda original: {"_superseded": original.get("status") == "superseded"},
        superseded=superseded,
    )


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """DocumentReference -> MedicalDocument fields."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
