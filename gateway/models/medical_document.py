"""MedicalDocument: a versioned file (FHIR DocumentReference + Binary). A new file is a new version."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import JSONType
from gateway.models.base import ProfileRecord, date_field, parse_field


class MedicalDocument(ProfileRecord):
    __tablename__ = "medical_document"
    __parse_class__ = "MedicalDocument"
    __category__ = "documents"

    file_name: Mapped[str] = mapped_column(
        String(300), ForeignKey("stored_file.name"), index=True, nullable=False,
        info=parse_field("file", "File", required=True),
    )
    document_type: Mapped[str] = mapped_column(
        String(200), nullable=False, info=parse_field("documentType", "String", required=True)
    )
    title: Mapped[str] = mapped_column(String(500), nullable=False, info=parse_field("title", "String", required=True))
    description: Mapped[str | None] = mapped_column(Text, info=parse_field("description", "String"))
    tags: Mapped[list[str] | None] = mapped_column(JSONType, info=parse_field("tags", "Array"))
    uploaded_at: Mapped[datetime] = date_field("uploadedAt", required=True, server_default_now=True)
    is_shared: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, info=parse_field("isShared", "Boolean", required=True, default=False)
    )
    #: The document's own version (1, 2, ...): bumped when `file` changes; earlier files stay stored.
    doc_version: Mapped[int] = mapped_column(
        Integer, nullable=False, default=1, info=parse_field("version", "Number", default=1, server_managed=True)
    )
