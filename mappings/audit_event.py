"""AuditLog <-> AuditEvent (hl7.org/fhir/R4/auditevent.html).

action -> type/subtype/action via codes/audit_actions.csv (REST interactions use audit-event-type "rest"
with a restful-interaction subtype; login/logout/export use DICOM codes); createdAt -> recorded (the event
time, so unlike other resources from_fhir returns createdAt here); actor -> agent[0] (who, requestor);
entityType/entityId -> entity[0].what, summary -> entity[0].description, metadata -> entity[0].detail
(one "metadata" detail holding the Object as JSON, so any value type reads back exactly); the other
records of a grouped write (a transaction's creates in one profile: metadata.entities) -> one entity each,
derived from the metadata; profile -> an entity with role 1 (Patient). source.observer names this gateway.
"""

from __future__ import annotations

import json
from typing import Any

from . import lossless
from .context import DEFAULT, MappingContext
from .native import fhir_instant, from_reference, iso, pointer, profile_pointer, prune, reference, to_instant
from .terminology import AUDIT_ACTIONS

RESOURCE_TYPE = "AuditEvent"
CLASS_NAME = "AuditLog"
# Native fields the resource does not carry (createdAt is AuditEvent.recorded).
NATIVE_ONLY = ("updatedAt", "ACL", "version")

OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
OBSERVER = {"display": "PHR FHIR Gateway"}
METADATA_DETAIL = "metadata"

ACTIONS = {row["action"]: row for row in AUDIT_ACTIONS}
# Actions whose metadata.entities become entities of their own (`_listed`): the writes a transaction
# audits together (gateway/audit.py).
WRITES = ("create", "update", "delete")

ELEMENTS: dict[str, tuple[str, ...]] = {
    "type": ("action",),
    "subtype": ("action",),
    "action": ("action",),
    "recorded": ("createdAt",),
    "agent": ("actor",),
    "source": (),
    "entity": ("entityType", "entityId", "summary", "metadata", "profile"),
}


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return prune({"system": system, "code": code, "display": display})


def _type_elements(action: str | None) -> dict[str, Any]:
    row = ACTIONS.get(action or "")
    if row is None:
        # An action we have no code for: AuditEvent.type is required, so it becomes a display-only
        # Coding that says what the PHR logged, rather than a code that would claim a different event.
        return {"type": {"display": action}} if action else {}
    body: dict[str, Any] = {"type": _coding(row["type_system"], row["type_code"], row["type_display"])}
    if row["subtype_code"]:
        body["subtype"] = [_coding(row["subtype_system"], row["subtype_code"], row["subtype_display"])]
    body["action"] = row["fhir_action"]
    return body


def _action(resource: dict[str, Any]) -> str | None:
    type_ = resource.get("type") or {}
    subtype = (resource.get("subtype") or [{}])[0]
    for row in AUDIT_ACTIONS:
        if (
            row["type_code"] == type_.get("code")
            and row["subtype_code"] == subtype.get("code", "")
            and row["fhir_action"] == resource.get("action")
        ):
            return row["action"]
    return type_.get("display") or type_.get("code")


def _entity_reference(entity_type: str, entity_id: str, ctx: MappingContext) -> dict[str, Any]:
    if entity_type == "Provider":
        return {"reference": f"Practitioner/{entity_id}"}
    return reference(pointer(entity_type, entity_id), ctx) or {}


def _listed(record: dict[str, Any], ctx: MappingContext) -> list[dict[str, Any]]:
    """The other records one audited write interaction changed (a transaction's creates in a profile:
    metadata.entities, by class), each an entity of its own so that a search by entity finds the event.
    Read rows list what was read only in the metadata."""
    metadata = record.get("metadata")
    if not isinstance(metadata, dict) or record.get("action") not in WRITES:
        return []
    listed = metadata.get("entities")
    if not isinstance(listed, dict):
        return []
    first = (record.get("entityType"), record.get("entityId"))
    return [{"what": _entity_reference(class_name, object_id, ctx)}
            for class_name, ids in listed.items() if isinstance(ids, list)
            for object_id in ids if isinstance(object_id, str) and (class_name, object_id) != first]


def _build(record: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    body = _type_elements(record.get("action"))
    if record.get("createdAt"):
        body["recorded"] = fhir_instant(record["createdAt"])
    actor = reference(record.get("actor"), ctx)
    if actor:
        body["agent"] = [{"who": actor, "requestor": True}]
    elif record.get("client"):
        # A back-end system acting without a user: the OAuth client is the agent (AuditEvent.agent is 1..*).
        body["agent"] = [{"who": {"identifier": {"system": ctx.identifier_system("client"),
                                                 "value": record["client"]}}, "requestor": True}]
    else:
        # The master key or an anonymous caller: named, since R4 requires at least one agent.
        who = "master key (administration)" if record.get("actorType") == "master" else "anonymous"
        body["agent"] = [{"who": {"display": who}, "requestor": True}]
    body["source"] = {"observer": OBSERVER}
    entities = []
    if record.get("entityType") and record.get("entityId"):
        entity: dict[str, Any] = {"what": _entity_reference(record["entityType"], record["entityId"], ctx)}
        if record.get("summary"):
            entity["description"] = record["summary"]
        if record.get("metadata") is not None:
            entity["detail"] = [
                {
                    "type": METADATA_DETAIL,
                    "valueString": json.dumps(record["metadata"], ensure_ascii=False, separators=(",", ":")),
                }
            ]
        entities.append(entity)
        entities.extend(_listed(record, ctx))
    if record.get("profile"):
        entities.append(
            {"what": {"reference": f"Patient/{record['profile']['objectId']}"}, "role": PATIENT_ROLE}
        )
    if entities:
        body["entity"] = entities
    return body


def _columns(resource: dict[str, Any], ctx: MappingContext) -> dict[str, Any]:
    agents = resource.get("agent") or []
    agent = next((a for a in agents if a.get("requestor")), agents[0] if agents else {})
    entities = resource.get("entity") or []
    patient = next((e for e in entities if (e.get("role") or {}).get("code") == "1"), None)
    subject = next((e for e in entities if e is not patient), {})
    target = from_reference(subject.get("what"), ctx)
    detail = next((d for d in subject.get("detail", []) if d.get("type") == METADATA_DETAIL), None)
    recorded = to_instant(resource.get("recorded"))
    return prune(
        {
            "createdAt": iso(recorded) if recorded else None,
            "actor": from_reference(agent.get("who"), ctx),
            "profile": profile_pointer((patient or {}).get("what")),
            "entityType": target["className"] if target else None,
            "entityId": target["objectId"] if target else None,
            "action": _action(resource),
            "summary": subject.get("description"),
            "metadata": json.loads(detail["valueString"]) if detail and detail.get("valueString") else None,
        }
    )


def to_fhir(record: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """AuditLog -> AuditEvent."""
    return lossless.to_fhir(RESOURCE_TYPE, record, _build, _columns, ELEMENTS, ctx)


def from_fhir(resource: dict[str, Any], ctx: MappingContext = DEFAULT) -> dict[str, Any]:
    """AuditEvent -> AuditLog fields (with createdAt = recorded)."""
    return lossless.from_fhir(resource, _build, _columns, ctx)
