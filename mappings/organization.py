"""Provider (kind organization) <-> Organization (hl7.org/fhir/R4/organization.html).

name -> name; systemId -> identifier; contact -> telecom/address (providers.py). R4 org-1 needs a name or
an identifier; Provider.name is required natively, so a native Provider always satisfies it.
"""

from __future__ import annotations

from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .providers import ELEMENTS, contact_columns, contact_elements, identifier_elements, system_id

RESOURCE_TYPE = "Organization"
CLASS_NAME = "Provider"
KIND = "organization"
NATIVE_ONLY = SERVER_FIELDS + ("user",)  # Provider.user is the login: account data


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = identifier_elements(record, ctx)
    if record.get("name"):
        body["name"] = record["name"]
    body.update(contact_elements(record))
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": KIND}
    if resource.get("name"):
        record["name"] = resource["name"]
    if system_id(resource, ctx):
        record["systemId"] = system_id(resource, ctx)
    if contact_columns(resource):
        record["contact"] = contact_columns(resource)
    return record


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Provider -> Organization."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Organization -> Provider fields (kind "organization")."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
