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


#: Consent statuses (R4 consent-state-codes) under which no access is given: the grant is revoked.
NOT_IN_FORCE = ("inactive", "rejected", "entered-in-error")
#: Statuses of a consent not yet agreed: a SharedAccess is in force from the moment it exists, so the
#: gateway does not store them (a stored "proposed" Consent would otherwise open the record).
NOT_YET = ("draft", "proposed")


def apply_consent_status(resource: dict, native: dict, revoked_at=None, now=None) -> None:
    """Make the native grant say what a Consent's `status` says (R4 consent.html#status).

    `status` has no column: the mapping derives it from revokedAt and expiresAt. So a Consent written as
    "inactive" (or rejected, entered-in-error) revokes the grant unless it already ended, keeping an
    earlier revocation time; "active" without our revokedAt extension lifts a revocation; draft and
    proposed are refused."""
    from gateway.errors import Unprocessable
    from gateway.services.codec import date_json
    from mappings.native import to_instant

    status = resource.get("status")
    if status in NOT_YET:
        raise Unprocessable(f"A Consent with status {status!r} cannot be stored: a grant is in force "
                            "from the moment it exists; send it as active once agreed")
    if status not in NOT_IN_FORCE or native.get("revokedAt"):
        return
    now = now or utcnow()
    expires = to_instant(native.get("expiresAt"))
    if expires is not None and expires <= now:
        return  # ended by its period already: nothing to revoke
    when = revoked_at or now
    native["revokedAt"] = date_json(when)
