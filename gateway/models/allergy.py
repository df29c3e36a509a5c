"""Allergy (FHIR AllergyIntolerance)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import ProfileRecord, date_field, parse_field

SEVERITIES = ("mild", "moderate", "severe")


class Allergy(ProfileRecord):
    __tablename__ = "allergy"
    __parse_class__ = "Allergy"
    __category__ = "allergies"

    substance: Mapped[str] = mapped_column(
        String(500), nullable=False, info=parse_field("substance", "String", required=True)
    )
    # DESIGN.md marks severity and reaction required; they are optional here on purpose: allergies coming
    # from EHRs (FHIR writes, imports) often record no reaction, and refusing them would lose the allergy
    # itself. Apps on the template still send both; they just are not forced to.
    severity: Mapped[str | None] = mapped_column(
        String(16), nullable=True, info=parse_field("severity", "String", choices=SEVERITIES)
    )
    reaction: Mapped[str | None] = mapped_column(Text, nullable=True, info=parse_field("reaction", "String"))
    notes: Mapped[str | None] = mapped_column(Text, info=parse_field("notes", "String"))
    recorded_at: Mapped[datetime] = date_field("recordedAt", required=True, server_default_now=True)
    is_active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, info=parse_field("isActive", "Boolean", required=True, default=True)
    )
    onset_date: Mapped[datetime | None] = date_field("onsetDate")
