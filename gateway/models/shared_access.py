"""SharedAccess: a patient's grant to a user and/or a provider (FHIR Consent)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import JSONType
from gateway.models.base import ProfileRecord, date_field, parse_field

ACCESS_LEVELS = ("read", "write")
SCOPES = ("documents", "allergies", "immunizations", "medications", "labs", "contacts")


class SharedAccess(ProfileRecord):
    __tablename__ = "shared_access"
    __parse_class__ = "SharedAccess"

    grantee_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("user_account.object_id"), index=True,
        info=parse_field("grantee", "Pointer", target="_User"),
    )
    provider_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("provider.object_id"), index=True,
        info=parse_field("provider", "Pointer", target="Provider"),
    )
    access_level: Mapped[str] = mapped_column(
        String(8), nullable=False, info=parse_field("accessLevel", "String", required=True, choices=ACCESS_LEVELS)
    )
    scope: Mapped[list[str]] = mapped_column(
        JSONType, nullable=False, info=parse_field("scope", "Array", required=True, item_choices=SCOPES)
    )
    expires_at: Mapped[datetime | None] = date_field("expiresAt")
    created_by_id: Mapped[str] = mapped_column(
        String(10), ForeignKey("user_account.object_id"), nullable=False,
        info=parse_field("createdBy", "Pointer", required=True, target="_User", default="caller"),
    )
    revoked_at: Mapped[datetime | None] = date_field("revokedAt")
