"""AuditLog: append-only trail of every access by others, every write, share, login, token and export.

Entries name ids and types only, never health data (FHIR AuditEvent).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import JSONType
from gateway.models.base import Record, parse_field

ACTOR_TYPES = ("user", "client", "master", "anonymous")


class AuditLog(Record):
    __tablename__ = "audit_log"
    __parse_class__ = "AuditLog"
    __table_args__ = (Index("ix_audit_log_profile_created", "profile_id", "created_at"),)

    actor_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("user_account.object_id", ondelete="SET NULL"), index=True,
        info=parse_field("actor", "Pointer", target="_User", server_managed=True),
    )
    actor_type: Mapped[str] = mapped_column(
        String(16), nullable=False, info=parse_field("actorType", "String", server_managed=True, choices=ACTOR_TYPES)
    )
    #: The OAuth client (SMART app or back-end system) that acted, when there was one.
    client_id: Mapped[str | None] = mapped_column(String(100), info=parse_field("client", "String", server_managed=True))
    profile_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("profile.object_id"), nullable=True,
        info=parse_field("profile", "Pointer", target="Profile", server_managed=True),
    )
    entity_type: Mapped[str] = mapped_column(
        String(64), nullable=False, info=parse_field("entityType", "String", required=True, server_managed=True)
    )
    entity_id: Mapped[str] = mapped_column(
        String(64), nullable=False, info=parse_field("entityId", "String", required=True, server_managed=True)
    )
    action: Mapped[str] = mapped_column(
        String(16), nullable=False, index=True, info=parse_field("action", "String", required=True, server_managed=True)
    )
    summary: Mapped[str] = mapped_column(
        String(500), nullable=False, info=parse_field("summary", "String", required=True, server_managed=True)
    )
    details: Mapped[dict[str, Any] | None] = mapped_column(
        "metadata", JSONType, info=parse_field("metadata", "Object", server_managed=True)
    )
