"""Grants end by time as well as by revocation: a Consent's FHIR status must follow the clock."""
from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from gateway.db import utcnow
from gateway.models import FhirIndex, FhirResource, SharedAccess


def refresh_expired_consents(session: Session) -> int:
    """Re-map grants that expired since their Consent was last written (status active -> inactive).

    Cheap when nothing expired: one indexed query. Called before Consent reads and searches, so the FHIR
    view never shows an expired grant as active.
    """
    from gateway.services.fhir_store import FhirStore

    now = utcnow()
    stale = session.scalars(
        select(SharedAccess).join(FhirResource, and_(FhirResource.resource_type == "Consent",
                                                     FhirResource.id == SharedAccess.object_id))
        .where(SharedAccess.expires_at <= now, SharedAccess.deleted_at.is_(None),
               FhirResource.id.in_(select(FhirIndex.resource_id).where(
                   FhirIndex.resource_type == "Consent", FhirIndex.param == "status", FhirIndex.value == "active")))
    ).all()
    store = FhirStore(session)
    for grant in stale:
        store.sync("SharedAccess", grant)  # also re-makes the provider's Group without that patient
    return len(stale)
