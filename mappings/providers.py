"""What Practitioner and Organization share: Provider.systemId and Provider.contact.

Provider.contact is a native Object; its known keys map to ContactPoint systems
(hl7.org/fhir/R4/datatypes.html#ContactPoint) and "address" to Address.text. Other keys have no FHIR home
and are not shown (the store keeps them; from_fhir never returns them).
"""

from __future__ import annotations

from typing import Any

from .context import MappingContext

SYSTEM_ID = "provider-id"  # identifier system name: {base}/identifier/provider-id

# Provider.contact key -> ContactPoint.system (required binding contact-point-system).
CONTACT_TELECOM = {
    "phone": "phone",
    "fax": "fax",
    "email": "email",
    "pager": "pager",
    "website": "url",
    "sms": "sms",
}
TELECOM_CONTACT = {v: k for k, v in CONTACT_TELECOM.items()}

ELEMENTS: dict[str, tuple[str, ...]] = {
    "identifier": ("systemId",),
    "name": ("name",),
    "telecom": ("contact",),
    "address": ("contact",),
}


def identifier_elements(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    if not record.get("systemId"):
        return {}
    return {"identifier": [{"system": ctx.identifier_system(SYSTEM_ID), "value": record["systemId"]}]}


def system_id(resource: dict[str, Any], ctx: MappingContext) -> str | None:
    """Our systemId identifier, else the first identifier's value (an EHR's NPI, say)."""
    identifiers = resource.get("identifier") or []
    ours = [i for i in identifiers if i.get("system") == ctx.identifier_system(SYSTEM_ID)]
    return ((ours or identifiers or [{}])[0]).get("value")


def contact_elements(record: dict[str, Any]) -> dict[str, Any]:
    contact = record.get("contact") or {}
    body: dict[str, Any] = {}
    telecom = [
        {"system": CONTACT_TELECOM[k], "value": str(v)}
        for k, v in contact.items()
        if k in CONTACT_TELECOM and v
    ]
    if telecom:
        body["telecom"] = telecom
    if contact.get("address"):
        body["address"] = [{"text": contact["address"]}]
    return body


def contact_columns(resource: dict[str, Any]) -> dict[str, Any] | None:
    contact: dict[str, Any] = {}
    for point in resource.get("telecom", []):
        key = TELECOM_CONTACT.get(point.get("system"))
        if key and point.get("value") and key not in contact:
            contact[key] = point["value"]
    address = (resource.get("address") or [None])[0]
    if address:
        text = address.get("text") or ", ".join(
            list(address.get("line", []))
            + [address[k] for k in ("city", "state", "postalCode", "country") if address.get(k)]
        )
        if text:
            contact["address"] = text
    return contact or None
