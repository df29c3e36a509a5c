"""Vaccination (FHIR Immunization)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.models.base import ProfileRecord, date_field, parse_field


class Vaccination(ProfileRecord):
    __tablename__ = "vaccination"
    __parse_class__ = "Vaccination"
    __category__ = "immunizations"

    vaccine_name: Mapped[str] = mapped_column(
        String(500), nullable=False, info=parse_field("vaccineName", "String", required=True)
    )
    date_administered: Mapped[datetime] = date_field("dateAdministered", required=True)
    dose: Mapped[str | None] = mapped_column(String(100), info=parse_field("dose", "String"))
    lot_number: Mapped[str | None] = mapped_column(String(100), info=parse_field("lotNumber", "String"))
    provider: Mapped[str | None] = mapped_column(String(500), info=parse_field("provider", "String"))
    performer_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("provider.object_id"), index=True,
        info=parse_field("performer", "Pointer", target="Provider"),
    )
    next_dose_date: Mapped[datetime | None] = date_field("nextDoseDate")
    proof_document_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("medical_document.object_id"), index=True,
        info=parse_field("proofDocument", "Pointer", target="MedicalDocument"),
    )
