"""A MedicalDocument's file as a Binary (hl7.org/fhir/R4/binary.html).

Binary ids: "<documentId>" for a document without a version counter, "<documentId>-v<version>" otherwise,
so every stored version's file has its own Binary (older versions' files are kept, DESIGN.md). The bytes
are not here (no I/O): pass `data` when the caller has loaded them, else the gateway streams the file.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from .context import DEFAULT, MappingContext

RESOURCE_TYPE = "Binary"
_ID = re.compile(r"^(?P<doc>[A-Za-z0-9.]+?)(?:-v(?P<version>\d+))?$")


def binary_id(record: dict[str, Any]) -> str:
    version = record.get("version")
    return f"{record['objectId']}-v{version}" if version is not None else record["objectId"]


def parse_binary_id(binary: str) -> tuple[str, int | None]:
    """(MedicalDocument objectId, version or None) for a Binary id made by `binary_id`."""
    m = _ID.match(binary)
    if not m:
        raise ValueError(f"not a Binary id of ours: {binary!r}")
    return m["doc"], int(m["version"]) if m["version"] else None


def binary_url(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> str:
    return f"{ctx.base}/Binary/{binary_id(record)}"


def to_fhir(
    record: dict[str, Any], ctx: MappingContext = DEFAULT, *, data: bytes | None = None
) -> dict[str, Any]:
    """MedicalDocument (its current file) -> Binary; securityContext points at the DocumentReference, so
    access to the Binary follows access to the document."""
    file = record.get("file") or {}
    resource: dict[str, Any] = {
        "resourceType": RESOURCE_TYPE,
        "id": binary_id(record),
        # Binary.contentType is required; an unknown type is honest as application/octet-stream.
        "contentType": file.get("contentType") or "application/octet-stream",
        "securityContext": {"reference": f"DocumentReference/{record['objectId']}"},
    }
    if data is not None:
        resource["data"] = base64.b64encode(data).decode("ascii")
    return resource


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Binary -> {"contentType", "data" (bytes, when inline), "document" (DocumentReference id)}.

    Not a native record: a Binary is file content that belongs to a MedicalDocument."""
    result: dict[str, Any] = {"contentType": resource.get("contentType")}
    if resource.get("data"):
        result["data"] = base64.b64decode(resource["data"])
    context = (resource.get("securityContext") or {}).get("reference", "")
    if context.startswith("DocumentReference/"):
        result["document"] = context.split("/", 1)[1]
    return result
