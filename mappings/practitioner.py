"""Provider (kind practitioner) <-> Practitioner (hl7.org/fhir/R4/practitioner.html).

name -> name (text, family/given when clear); systemId -> identifier (our provider-id system); contact ->
telecom/address (providers.py). Provider.user (the provider's login) is account data and not shown.
"""

from __future__ import annotations

from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .lossless import SERVER_FIELDS
from .names import full_name, human_name, pick_name
from .providers import ELEMENTS, contact_columns, contact_elements, identifier_elements, system_id

RESOURCE_TYPE = "Practitioner"
CLASS_NAME = "Provider"
KIND = "practitioner"
NATIVE_ONLY = SERVER_FIELDS + ("user",)  # Provider.user is the login: account data


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body: dict[str, Any] = identifier_elements(record, ctx)
    name = human_name(record.get("name"))
    if name:
        body["name"] = [name]
    body.update(contact_elements(record))
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": KIND}
    if full_name(pick_name(resource.get("name"))):
        record["name"] = full_name(pick_name(resource.get("name")))
    if system_id(resource, ctx):
        record["systemId"] = system_id(resource, ctx)
    if contact_columns(resource):
        record["contact"] = contact_columns(resource)
    return record


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Provider -> Practitioner."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """Practitioner -> Provider fields (kind "practitioner")."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
