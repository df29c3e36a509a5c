"""Writing the audit trail. One row per access by someone other than the owner, per write, share,
revoke, login, token grant and export. Entries carry ids and types, never health data."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway import access
from gateway.access import Principal
from gateway.db import new_object_id, utcnow
from gateway.models import AuditLog
from gateway.services import write_buffer
from mappings import audit_event

ACTIONS = ("create", "read", "query", "update", "delete", "share", "revoke", "login", "logout", "token",
           "export", "signup")


def actor_type(p: Principal) -> str:
    if p.master:
        return "master"
    if p.user_id:
        return "user"
    if p.client_id:
        return "client"
    return "anonymous"


#: Actions a transaction writes one row for per (caller, action, profile), listing the records
#: (`group_writes`); the AuditEvent names each listed record for these. Shares and revokes stay one row each.
GROUPED = audit_event.WRITES


def record(
    session: Session,
    p: Principal,
    action: str,
    entity_type: str,
    entity_id: str,
    *,
    profile_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit row in the caller's transaction (so a rolled-back write leaves no trace). Inside a
    write scope (a Bundle) the row and its AuditEvent are sent with the others; inside a
    scope that groups writes, a create, update or delete joins its group's row instead."""
    assert action in ACTIONS, action
    buffer = write_buffer.current(session)
    if action in GROUPED and buffer is not None and buffer.audit_groups is not None:
        entities = buffer.audit_groups.setdefault((p, action, profile_id), {})
        entities.setdefault(entity_type, {})[entity_id] = None
        buffer.once(_GROUPS, lambda: _write_groups(session, buffer))
        return
    _write(session, p, action, entity_type, entity_id, profile_id, details)


def group_writes(buffer: write_buffer.WriteBuffer, via: str) -> None:
    """From now on in this write scope (a FHIR transaction: one interaction), the records each caller
    creates, updates or deletes in one profile get one audit row per action, written when the scope's
    rows go out. Its entity is the first record; `details.entities` lists all of them by class, and the
    AuditEvent names each one (mappings/audit_event.py), so `AuditEvent?entity=` finds every record."""
    if buffer.audit_groups is None:
        buffer.audit_groups = {}
        buffer.audit_via = via


_GROUPS = "audit-groups"


def _write_groups(session: Session, buffer: write_buffer.WriteBuffer) -> None:
    groups, buffer.audit_groups = buffer.audit_groups or {}, {}
    for (p, action, profile_id), entities in groups.items():
        first_type, first_ids = next(iter(entities.items()))
        first_id = next(iter(first_ids))
        count = sum(len(ids) for ids in entities.values())
        if count == 1:  # the same row as outside a transaction
            _write(session, p, action, first_type, first_id, profile_id, None)
            continue
        _write(session, p, action, first_type, first_id, profile_id,
               {"via": buffer.audit_via, "interaction": "transaction",
                "entities": {k: list(v) for k, v in entities.items()}},
               summary=f"{_who(p)} {action} {count} records (transaction)")


def _who(p: Principal) -> str:
    return p.user_id or p.client_id or actor_type(p)


def _write(session: Session, p: Principal, action: str, entity_type: str, entity_id: str,
           profile_id: str | None, details: dict[str, Any] | None, *, summary: str | None = None) -> None:
    from gateway.services.fhir_store import FhirStore

    now = utcnow()
    row = AuditLog(
        object_id=new_object_id(), created_at=now, updated_at=now, version=1,
        actor_id=p.user_id, actor_type=actor_type(p), client_id=p.client_id, profile_id=profile_id,
        entity_type=entity_type, entity_id=entity_id, action=action,
        summary=summary or f"{_who(p)} {action} {entity_type}/{entity_id}", details=details or None,
        acl={},
    )
    with write_buffer.scope(session) as buffer:
        buffer.add_new(row)
        # Versioned like every record: an amendment by the master key keeps the version it replaces.
        FhirStore(session).sync("AuditLog", row, created=True)


def record_reads(session: Session, p: Principal, touched: list[tuple[str, str | None, str]],
                 *, via: str = "native") -> int:
    """One 'read' row per profile whose data someone other than its owner just received.

    `touched` lists (class name, profile id, object id) of everything returned, included objects too.
    Returns the number of rows written.
    """
    from sqlalchemy import select

    from gateway.models import Profile

    profiles = {profile_id for _, profile_id, _ in touched if profile_id}
    if not profiles:
        return 0
    owned: set[str] = set()
    if p.user_id and not p.master:
        # Profiles the request knows to be the caller's (as it authenticated, and those it created since:
        # access.learn_new_profile) need no query; any other is looked up.
        cached = session.info.get(access.REQUEST_OWNERSHIP)
        if cached and cached[0] == p.user_id:
            owned = profiles & cached[1]
        unknown = sorted(profiles - owned)
        if unknown:
            owned |= set(session.scalars(select(Profile.object_id).where(
                Profile.object_id.in_(unknown), Profile.user_id == p.user_id)))
    others = profiles - owned
    if not others:  # the owner's own data (a 1,000-resource $everything: nothing more to do)
        return 0
    by_profile: dict[str, dict[str, dict[str, None]]] = {}  # ids in a dict: ordered, no repeats, O(1)
    for class_name, profile_id, object_id in touched:
        if profile_id in others:
            by_profile.setdefault(profile_id, {}).setdefault(class_name, {})[object_id] = None
    written = 0
    for profile_id, entities in by_profile.items():
        first_class, first_ids = next(iter(entities.items()))
        single = len(entities) == 1 and len(first_ids) == 1
        record(session, p, "read", first_class, next(iter(first_ids)) if single else "query", profile_id=profile_id,
               details={"via": via, "entities": {k: list(v)[:1000] for k, v in entities.items()}})
        written += 1
    return written
