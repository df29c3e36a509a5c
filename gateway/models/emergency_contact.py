"""EmergencyContact (FHIR RelatedPerson, and Patient.contact)."""
from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import ProfileRecord, parse_field


class EmergencyContact(ProfileRecord):
    __tablename__ = "emergency_contact"
    __parse_class__ = "EmergencyContact"
    __category__ = "contacts"

    name: Mapped[str] = mapped_column(String(500), nullable=False, info=parse_field("name", "String", required=True))
    relationship: Mapped[str] = mapped_column(
        String(100), nullable=False, info=parse_field("relationship", "String", required=True)
    )
    phone: Mapped[str] = mapped_column(String(64), nullable=False, info=parse_field("phone", "String", required=True))
    notes: Mapped[str | None] = mapped_column(Text, info=parse_field("notes", "String"))
