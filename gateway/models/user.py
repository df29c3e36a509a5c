"""_User and _Session: accounts and Parse-style `r:` session tokens."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import JSONType, UTCDateTime
from gateway.models.base import Record, parse_field

ROLES = ("patient", "caregiver", "provider", "admin")


class User(Record):
    __tablename__ = "user_account"
    __parse_class__ = "_User"
    __soft_delete__ = False

    username: Mapped[str] = mapped_column(
        String(150), unique=True, nullable=False, info=parse_field("username", "String", required=True)
    )
    #: scrypt hash (werkzeug); the native `password` field is write-only and never read back.
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, info=parse_field("email", "String"))
    role: Mapped[str] = mapped_column(
        String(16), nullable=False, default="patient",
        info=parse_field("role", "String", default="patient", choices=ROLES),
    )


class Session(Record):
    __tablename__ = "user_session"
    __parse_class__ = "_Session"
    __soft_delete__ = False

    #: SHA-256 of the `r:` token: a stolen database does not hand out live sessions.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[str] = mapped_column(
        String(10), ForeignKey("user_account.object_id", ondelete="CASCADE"), index=True, nullable=False,
        info=parse_field("user", "Pointer", target="_User", server_managed=True),
    )
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, info=parse_field("expiresAt", "Date", server_managed=True)
    )
    installation_id: Mapped[str | None] = mapped_column(
        String(64), info=parse_field("installationId", "String", server_managed=True)
    )
    created_with: Mapped[dict[str, Any] | None] = mapped_column(
        JSONType, info=parse_field("createdWith", "Object", server_managed=True)
    )
    restricted: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False, info=parse_field("restricted", "Boolean", server_managed=True)
    )
