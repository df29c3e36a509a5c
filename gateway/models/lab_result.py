"""LabResult (FHIR Observation, category laboratory). `value` is a number or a text."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import ProfileRecord, date_field, parse_field


class LabResult(ProfileRecord):
    __tablename__ = "lab_result"
    __parse_class__ = "LabResult"
    __category__ = "labs"

    test_name: Mapped[str] = mapped_column(
        String(500), nullable=False, info=parse_field("testName", "String", required=True)
    )
    # Two columns so that `$gt` on numbers and equality on text both run in SQL on an indexable column.
    value_number: Mapped[float | None] = mapped_column(
        Float, info=parse_field("value", "Mixed", text_attr="value_text")
    )
    value_text: Mapped[str | None] = mapped_column(Text)
    units: Mapped[str | None] = mapped_column(String(100), info=parse_field("units", "String"))
    reference_range: Mapped[str | None] = mapped_column(String(200), info=parse_field("referenceRange", "String"))
    date: Mapped[datetime] = date_field("date", required=True)
    attachment_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("medical_document.object_id"), index=True,
        info=parse_field("attachment", "Pointer", target="MedicalDocument"),
    )
