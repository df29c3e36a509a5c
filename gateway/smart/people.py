"""Who signs in on the authorize pages, which records they may open an app on, and who they are in FHIR
terms (the `fhirUser` claim). Takes a Session; no Flask."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from gateway import audit
from gateway.access import Principal, granted_profiles, principal_for_user
from gateway.models import Profile, Provider, User
from gateway.ops.metrics import login_failed
from gateway.services.users import _DUMMY_HASH


@dataclass(frozen=True)
class AuthorizedUser:
    """The person behind a code or a refresh token, with the record the app was opened on."""

    user: User
    patient_id: str | None
    fhir_user: str | None
    auth_time: int | None = None

    def get_user_id(self) -> str:  # authlib's UserMixin
        return self.user.object_id


@dataclass(frozen=True)
class Choice:
    profile_id: str
    name: str
    own: bool


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Check a password (same time whether or not the account exists); audit the sign-in."""
    user = session.scalar(select(User).where(User.username == username)) if username else None
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if not ok or user is None:
        login_failed("page")
        return None
    audit.record(session, Principal(user_id=user.object_id, role=user.role), "login", "_User", user.object_id,
                 details={"via": "oauth"})
    return user


def profile_choices(session: Session, user: User) -> list[Choice]:
    """Records this person may open an app on: the profiles they own (a caregiver may own several), then
    those shared with them."""
    p = principal_for_user(session, user)
    rows = session.execute(
        select(Profile.object_id, Profile.full_name, Profile.user_id)
        .where(Profile.deleted_at.is_(None),
               or_(Profile.user_id == user.object_id, Profile.object_id.in_(granted_profiles(p))))
        .order_by(Profile.created_at, Profile.object_id)
    ).all()
    own = [Choice(r[0], r[1], True) for r in rows if r[2] == user.object_id]
    shared = [Choice(r[0], r[1], False) for r in rows if r[2] != user.object_id]
    return own + shared


def fhir_user(session: Session, user: User, patient_id: str | None, fhir_base: str) -> str | None:
    """Patient/<profile> when a patient acts on a record she owns; else Practitioner/<provider> for a
    provider's login; else the person's first own profile. (SMART: an absolute URL that resolves.)"""
    owned = session.scalars(select(Profile.object_id).where(
        Profile.user_id == user.object_id, Profile.deleted_at.is_(None)).order_by(Profile.created_at)).all()
    if patient_id and patient_id in owned:
        return f"{fhir_base}/Patient/{patient_id}"
    practitioner = session.scalar(select(Provider.object_id).where(
        Provider.user_id == user.object_id, Provider.deleted_at.is_(None), Provider.kind == "practitioner")
        .order_by(Provider.created_at).limit(1))
    if practitioner:
        return f"{fhir_base}/Practitioner/{practitioner}"
    if owned and user.role in ("patient", "caregiver"):
        return f"{fhir_base}/Patient/{owned[0]}"
    return None


def load_user(session: Session, user_id: str | None) -> User | None:
    return session.get(User, user_id) if user_id else None
