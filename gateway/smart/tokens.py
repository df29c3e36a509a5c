"""The authorization server's state: codes, grants and their tokens, used assertion ids. Tokens and codes
are stored as SHA-256 hashes only. A grant is one authorization; revoking it ends every token issued
under it at once (SMART App Launch, 'Revocation'; RFC 6749 4.1.2 for a code used twice)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.db import utcnow
from gateway.models.oauth import AuthorizationCode, OAuthGrant, OAuthToken, UsedJti
from gateway.services.users import hash_token

#: Lifetimes. SMART: access tokens at most an hour, Backend Services at most five minutes; codes about a
#: minute. Refresh tokens rotate at every use; an offline one lives for months, an online one for a day.
ACCESS_TTL = 3600
SYSTEM_ACCESS_TTL = 300
CODE_TTL = 60
REFRESH_TTL = {"offline_access": timedelta(days=90), "online_access": timedelta(hours=24)}


def new_grant_id() -> str:
    return secrets.token_hex(16)


def refresh_ttl(scope: str) -> timedelta | None:
    """The refresh token lifetime a granted scope allows; None: no refresh token at all."""
    granted = set(scope.split())
    if "offline_access" in granted:
        return REFRESH_TTL["offline_access"]
    if "online_access" in granted:
        return REFRESH_TTL["online_access"]
    return None


# ---- codes ----

def save_code(session: Session, code: str, *, client_id: str, user_id: str, redirect_uri: str, scope: str,
              patient_id: str | None, code_challenge: str, code_challenge_method: str, nonce: str | None,
              auth_time: int, now: datetime | None = None) -> AuthorizationCode:
    now = now or utcnow()
    row = AuthorizationCode(
        code_hash=hash_token(code), client_id=client_id, user_id=user_id, redirect_uri=redirect_uri, scope=scope,
        patient_id=patient_id, code_challenge=code_challenge, code_challenge_method=code_challenge_method,
        nonce=nonce, auth_time=auth_time, expires_at=now + timedelta(seconds=CODE_TTL), used=False,
    )
    session.add(row)
    session.flush()
    return row


def find_code(session: Session, code: str, client_id: str) -> AuthorizationCode | None:
    return session.scalar(select(AuthorizationCode).where(
        AuthorizationCode.code_hash == hash_token(code), AuthorizationCode.client_id == client_id))


def nonce_used(session: Session, client_id: str, nonce: str) -> bool:
    return session.scalar(select(AuthorizationCode.code_hash).where(
        AuthorizationCode.client_id == client_id, AuthorizationCode.nonce == nonce).limit(1)) is not None


# ---- grants and tokens ----

@dataclass
class Issued:
    grant: OAuthGrant
    access: OAuthToken
    refresh: OAuthToken | None


def start_grant(session: Session, *, client_id: str, user_id: str | None, scope: str, patient_id: str | None,
                audience: str, fhir_user: str | None) -> OAuthGrant:
    grant = OAuthGrant(grant_id=new_grant_id(), client_id=client_id, user_id=user_id, scope=scope,
                       patient_id=patient_id, audience=audience, fhir_user=fhir_user, created_at=utcnow())
    session.add(grant)
    session.flush()
    return grant


def store_tokens(session: Session, grant: OAuthGrant, token: dict, *, now: datetime | None = None) -> Issued:
    """Keep the hashes of an authlib token response's access (and refresh) token under the grant."""
    now = now or utcnow()
    scope = token.get("scope", "")
    access = OAuthToken(token_hash=hash_token(token["access_token"]), kind="access", grant_id=grant.grant_id,
                        client_id=grant.client_id, scope=scope, issued_at=now,
                        expires_at=now + timedelta(seconds=int(token["expires_in"])))
    session.add(access)
    refresh = None
    if token.get("refresh_token"):
        ttl = refresh_ttl(scope) or timedelta(0)
        refresh = OAuthToken(token_hash=hash_token(token["refresh_token"]), kind="refresh", grant_id=grant.grant_id,
                             client_id=grant.client_id, scope=scope, issued_at=now, expires_at=now + ttl)
        session.add(refresh)
    session.flush()
    return Issued(grant, access, refresh)


def find_token(session: Session, value: str, kind: str | None = None) -> tuple[OAuthToken, OAuthGrant] | None:
    """The token (any state) and its grant, or None."""
    if not isinstance(value, str) or not value or len(value) > 512:
        return None
    stmt = select(OAuthToken, OAuthGrant).join(OAuthGrant, OAuthGrant.grant_id == OAuthToken.grant_id) \
        .where(OAuthToken.token_hash == hash_token(value))
    if kind:
        stmt = stmt.where(OAuthToken.kind == kind)
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def is_live(token: OAuthToken, grant: OAuthGrant, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return (token.revoked_at is None and grant.revoked_at is None
            and (token.expires_at is None or token.expires_at > now))


def live_access_token(session: Session, value: str) -> tuple[OAuthToken, OAuthGrant] | None:
    found = find_token(session, value, "access")
    if found and is_live(*found):
        return found
    return None


def revoke_grant(session: Session, grant_id: str, now: datetime | None = None) -> None:
    """End a grant and every token under it, at once."""
    now = now or utcnow()
    session.execute(update(OAuthGrant).where(OAuthGrant.grant_id == grant_id, OAuthGrant.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.execute(update(OAuthToken).where(OAuthToken.grant_id == grant_id, OAuthToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.flush()


def retire_token(session: Session, token: OAuthToken, now: datetime | None = None) -> None:
    """A rotated refresh token stops working (its grant goes on under the new one)."""
    token.revoked_at = now or utcnow()
    session.flush()


def user_grants(session: Session, user_id: str) -> list[OAuthGrant]:
    """The live authorizations a person gave (the 'manage' page)."""
    return list(session.scalars(select(OAuthGrant).where(
        OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None)).order_by(OAuthGrant.created_at.desc())))


# ---- client assertion ids (Backend Services: a jti is never reused within its lifetime) ----

def remember_jti(session: Session, client_id: str, jti: str, expires_at: datetime) -> bool:
    """Record an assertion id; False when it was seen before. Expired ids are forgotten."""
    now = utcnow()
    session.execute(delete(UsedJti).where(UsedJti.expires_at < now - timedelta(minutes=10)))
    if session.get(UsedJti, (client_id, jti)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(UsedJti(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError:  # a concurrent request with the same jti won the race
        return False
    return True
