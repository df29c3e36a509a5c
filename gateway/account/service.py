"""What the patient's sharing pages show and do, for one signed-in person. Takes a Session and that
person's Principal; no Flask (STYLE.md 3).

Every change goes through ObjectService, the one write path: the access policy, versions, the FHIR view
(Consent, the provider's Group), change events and the audit trail all follow from it. Reading the trail
shows ids and types only (DESIGN.md: no health data in audit entries)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from gateway import access
from gateway.access import Principal
from gateway.db import utcnow
from gateway.errors import InvalidInput, NotFound
from gateway.models import AuditLog, OAuthClient, Profile, Provider, SharedAccess, User
from gateway.models.shared_access import ACCESS_LEVELS, SCOPES
from gateway.services.codec import date_json
from gateway.services.objects import ObjectService

#: Plain words for the sharing categories (DESIGN.md 'Scope -> FHIR'); the order is the form's.
CATEGORY_NAMES = {
    "documents": "Documents and files",
    "allergies": "Allergies",
    "immunizations": "Vaccinations",
    "medications": "Medications",
    "labs": "Lab results",
    "contacts": "Emergency contacts",
}
LEVEL_NAMES = {"read": "Can view", "write": "Can view and add"}
#: What each audited action means to a patient (gateway/audit.py ACTIONS).
ACTION_NAMES = {
    "create": "added", "read": "viewed", "query": "searched", "update": "changed", "delete": "deleted",
    "share": "shared", "revoke": "ended sharing", "login": "signed in", "logout": "signed out",
    "token": "connected an app", "export": "exported", "signup": "created an account",
}
#: The face a read (or a transaction's grouped writes) came through (audit details "via").
VIA_NAMES = {"native": "PHR app API", "fhir": "FHIR API", "oauth": "sign-in page", "graphql": "GraphQL API",
             "bulk": "bulk export"}
#: Longest a grant made on the page may run: a long-lived grant should be a decision, renewed on purpose.
MAX_DAYS = 5 * 366
TIMELINE_PAGE = 100


@dataclass(frozen=True)
class GrantView:
    grant_id: str
    provider: str | None
    grantee: str | None
    categories: list[str]
    level: str
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    status: str  # active, expired, revoked

    @property
    def who(self) -> str:
        return self.provider or self.grantee or "unknown"


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    when: datetime
    who: str
    action: str
    entity_type: str
    entity_id: str
    records: int
    via: str


class SharingService:
    def __init__(self, session: Session, principal: Principal, *, now: Callable[[], datetime] = utcnow):
        self.session = session
        self.p = principal
        self.now = now

    # ---- reading ----

    def profiles(self) -> list[Profile]:
        """The profiles this person owns (a caregiver owns several)."""
        return list(self.session.scalars(select(Profile).where(
            Profile.object_id.in_(access.owned_profiles(self.p))).order_by(Profile.created_at, Profile.object_id)))

    def profile(self, profile_id: str) -> Profile:
        """One owned profile; NotFound for anyone else's, whatever the reason."""
        row = self.session.scalar(select(Profile).where(
            Profile.object_id == profile_id, Profile.object_id.in_(access.owned_profiles(self.p))))
        if row is None:
            raise NotFound("Profile not found.")
        return row

    def providers(self) -> list[Provider]:
        """The provider directory, as every signed-in user reads it."""
        return list(self.session.scalars(select(Provider).where(
            Provider.deleted_at.is_(None), access.read_filter(Provider, self.p)).order_by(Provider.name)))

    def grants(self, profile_id: str) -> list[GrantView]:
        """Everyone with access to one owned profile: active grants first, then ended ones."""
        self.profile(profile_id)
        rows = self.session.execute(
            select(SharedAccess, Provider.name, User.username)
            .outerjoin(Provider, Provider.object_id == SharedAccess.provider_id)
            .outerjoin(User, User.object_id == SharedAccess.grantee_id)
            .where(SharedAccess.profile_id == profile_id, SharedAccess.deleted_at.is_(None))
            .order_by(SharedAccess.created_at.desc(), SharedAccess.object_id)
        ).all()
        now = self.now()
        views = [GrantView(g.object_id, provider, grantee, list(g.scope or []), g.access_level, g.expires_at,
                           g.revoked_at, g.created_at, _status(g, now)) for g, provider, grantee in rows]
        order = {"active": 0, "expired": 1, "revoked": 2}
        return sorted(views, key=lambda v: order[v.status])

    def timeline(self, profile_id: str, before: datetime | None = None,
                 limit: int = TIMELINE_PAGE) -> list[AuditEntry]:
        """The audit trail of one owned profile, newest first: who, what (type and id), when, how."""
        self.profile(profile_id)
        stmt = (select(AuditLog, User.username, User.role)
                .outerjoin(User, User.object_id == AuditLog.actor_id)
                .where(AuditLog.profile_id == profile_id, access.read_filter(AuditLog, self.p)))
        if before is not None:
            stmt = stmt.where(AuditLog.created_at < before)
        rows = self.session.execute(stmt.order_by(AuditLog.created_at.desc(), AuditLog.object_id.desc())
                                    .limit(limit)).all()
        clients = self._client_names({r[0].client_id for r in rows if r[0].client_id})
        providers = self._provider_names({r[0].actor_id for r in rows if r[0].actor_id})
        out = []
        for row, username, _role in rows:
            details = row.details or {}
            entities = details.get("entities") if isinstance(details.get("entities"), dict) else {}
            records = sum(len(v) for v in entities.values() if isinstance(v, list)) or 1
            if row.client_id:
                via = clients.get(row.client_id, row.client_id)
            else:
                via = VIA_NAMES.get(details.get("via"), "signed-in account (app or website)" if row.actor_id else "—")
            out.append(AuditEntry(row.object_id, row.created_at, self._who(row, username, providers),
                                  row.action, row.entity_type, row.entity_id, records, via))
        return out

    def _who(self, row: AuditLog, username: str | None, providers: dict[str, str]) -> str:
        if row.actor_id and row.actor_id == self.p.user_id:
            return "You"
        if row.actor_id and row.actor_id in providers:
            return f"{providers[row.actor_id]} ({username})"
        if username:
            return username
        if row.actor_type == "client":
            return "A connected system"
        if row.actor_type == "master":
            return "Administrator"
        return "Unknown"

    def _client_names(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        return dict(self.session.execute(select(OAuthClient.client_id, OAuthClient.name)
                                         .where(OAuthClient.client_id.in_(sorted(ids)))).all())

    def _provider_names(self, user_ids: set[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        return dict(self.session.execute(select(Provider.user_id, Provider.name).where(
            and_(Provider.user_id.in_(sorted(user_ids)), Provider.deleted_at.is_(None)))).all())

    # ---- changing ----

    def grant(self, profile_id: str, provider_id: str, categories: list[str], level: str,
              until: date) -> SharedAccess:
        """Share chosen categories of one owned profile with a provider (its login and its systems) until
        the end of `until` (UTC)."""
        self.profile(profile_id)
        provider = self.session.scalar(select(Provider).where(
            Provider.object_id == provider_id, Provider.deleted_at.is_(None)))
        if provider is None:
            raise InvalidInput("Choose a provider from the directory.")
        chosen = [c for c in SCOPES if c in set(categories)]
        if not chosen or len(chosen) != len(set(categories)):
            raise InvalidInput("Choose at least one kind of record to share.")
        if level not in ACCESS_LEVELS:
            raise InvalidInput("Choose whether the provider may only view, or also add records.")
        today = self.now().date()
        if until < today:
            raise InvalidInput("The end date is in the past.")
        if until > today + timedelta(days=MAX_DAYS):
            raise InvalidInput("Sharing can last at most five years; you can renew it later.")
        ends = datetime.combine(until + timedelta(days=1), time(0), tzinfo=timezone.utc)
        body: dict[str, Any] = {
            "profile": _pointer("Profile", profile_id), "provider": _pointer("Provider", provider_id),
            "accessLevel": level, "scope": chosen, "expiresAt": date_json(ends),
        }
        return ObjectService(self.session, self.p, now=self.now).create("SharedAccess", body).row

    def revoke(self, grant_id: str) -> None:
        """End a grant at once (it stays listed as revoked; the audit trail records the revocation)."""
        grant = self.session.scalar(select(SharedAccess).where(
            SharedAccess.object_id == grant_id, SharedAccess.deleted_at.is_(None),
            SharedAccess.profile_id.in_(access.owned_profiles(self.p))))
        if grant is None:
            raise NotFound("This sharing was not found.")
        if grant.revoked_at is not None:
            return
        ObjectService(self.session, self.p, now=self.now).update(
            "SharedAccess", grant_id, {"revokedAt": date_json(self.now())})


def _status(grant: SharedAccess, now: datetime) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    if grant.expires_at is not None and grant.expires_at <= now:
        return "expired"
    return "active"


def _pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}
