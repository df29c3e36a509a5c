"""Profile: one patient's record (FHIR Patient). A caregiver owns the profiles of those she manages."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import Record, date_field, parse_field


class Profile(Record):
    __tablename__ = "profile"
    __parse_class__ = "Profile"

    user_id: Mapped[str] = mapped_column(
        String(10), ForeignKey("user_account.object_id"), index=True, nullable=False,
        info=parse_field("user", "Pointer", required=True, target="_User", default="caller"),
    )
    full_name: Mapped[str] = mapped_column(
        String(500), nullable=False, info=parse_field("fullName", "String", required=True)
    )
    birth_date: Mapped[datetime | None] = date_field("birthDate")
    gender: Mapped[str | None] = mapped_column(String(32), info=parse_field("gender", "String"))
    blood_type: Mapped[str | None] = mapped_column(String(16), info=parse_field("bloodType", "String"))
    primary_care_provider: Mapped[str | None] = mapped_column(
        String(500), info=parse_field("primaryCareProvider", "String")
    )
    notes: Mapped[str | None] = mapped_column(Text, info=parse_field("notes", "String"))
