"""Medication (FHIR MedicationStatement)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import ProfileRecord, date_field, parse_field


class Medication(ProfileRecord):
    __tablename__ = "medication"
    __parse_class__ = "Medication"
    __category__ = "medications"

    name: Mapped[str] = mapped_column(String(500), nullable=False, info=parse_field("name", "String", required=True))
    dose: Mapped[str | None] = mapped_column(String(200), info=parse_field("dose", "String"))
    frequency: Mapped[str | None] = mapped_column(String(200), info=parse_field("frequency", "String"))
    instructions: Mapped[str | None] = mapped_column(Text, info=parse_field("instructions", "String"))
    active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, info=parse_field("active", "Boolean", default=True)
    )
    start_date: Mapped[datetime | None] = date_field("startDate")
    end_date: Mapped[datetime | None] = date_field("endDate")
