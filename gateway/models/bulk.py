"""Bulk Data export jobs and their NDJSON files. Files live in the database so any web process can serve
what any worker on any machine wrote; each file is one chunk of one resource type."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, JSONType, UTCDateTime, utcnow


class ExportJob(Base):
    __tablename__ = "export_job"
    __table_args__ = (Index("ix_export_job_status", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)  # system | patient | group
    group_id: Mapped[str | None] = mapped_column(String(64))
    request_url: Mapped[str] = mapped_column(Text, nullable=False)
    #: _type, _since, _typeFilter, _elements, patient ids, output format.
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    #: Who asked, so the worker applies exactly their access (user, client, providers, token scopes).
    principal: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    progress: Mapped[str | None] = mapped_column(String(200))
    #: Per resource type: the last exported id and the number of files written (resume point).
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    requires_token: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    transaction_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ExportFile(Base):
    __tablename__ = "export_file"
    __table_args__ = (Index("ix_export_file_job", "job_id", "kind", "resource_type", "seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("export_job.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False, default="output")  # output | deleted | error
    resource_type: Mapped[str] = mapped_column(String(40), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
