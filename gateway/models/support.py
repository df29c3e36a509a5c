"""Tables behind the records: version history, ACL entries for SQL filtering, stored files."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, JSONType, UTCDateTime, utcnow


class RecordVersion(Base):
    """Every version of a record that a change replaced (DESIGN.md: every change keeps the prior version);
    the current version is the record's own row. Older files of a MedicalDocument are found here (Binary of a
    past version); the FHIR face's history is fhir_history."""

    __tablename__ = "record_version"

    class_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, index=True)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: The record as the native API returns it to the master key, plus `_fhir`.
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)


class AclEntry(Base):
    """One principal's rights on one object: the ACL in a form SQL can filter on with an index."""

    __tablename__ = "acl_entry"
    __table_args__ = (Index("ix_acl_entry_principal", "principal", "class_name", "object_id"),)

    class_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: A user objectId, "*" (public) or "role:<name>".
    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    can_read: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    can_write: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class StoredFile(Base):
    """An uploaded file's metadata; the bytes live in FileBlob so listing files never loads them."""

    __tablename__ = "stored_file"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    original_name: Mapped[str] = mapped_column(String(300), nullable=False)
    content_type: Mapped[str] = mapped_column(String(200), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha1_b64: Mapped[str] = mapped_column(String(40), nullable=False)
    sha256_hex: Mapped[str] = mapped_column(String(64), nullable=False)
    created_by_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("user_account.object_id", ondelete="SET NULL"), index=True)
    #: The MedicalDocument this file belongs to (any version of it); readers of the document may download it.
    document_id: Mapped[str | None] = mapped_column(String(10), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FileBlob(Base):
    """File bytes in the database, so that every web process and worker on every machine sees them."""

    __tablename__ = "file_blob"

    name: Mapped[str] = mapped_column(String(300), ForeignKey("stored_file.name", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
