"""Our signing keys (RSA, for id_tokens): made on first use, kept in the database so every web process
signs with the same key; rotation makes a new active key and keeps the old ones published, so tokens
signed before the rotation still verify."""
from __future__ import annotations

from typing import Any

from joserfc.jwk import RSAKey, import_key
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.db import utcnow
from gateway.models.oauth import SigningKey

ID_TOKEN_ALG = "RS256"


def _new(session: Session) -> SigningKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ID_TOKEN_ALG}, private=True, auto_kid=True)
    data = key.as_dict(private=True)
    row = SigningKey(kid=data["kid"], private_jwk=data, created_at=utcnow(), active=True)
    session.add(row)
    session.flush()
    return row


def active_key(session: Session) -> SigningKey:
    """The newest active key, made now if there is none. (Two processes starting at once may each make
    one: both are published, the newest signs.)"""
    row = session.scalars(select(SigningKey).where(SigningKey.active.is_(True))
                          .order_by(SigningKey.created_at.desc(), SigningKey.kid).limit(1)).first()
    return row or _new(session)


def rotate(session: Session) -> SigningKey:
    """Retire the active keys from signing (they stay published for verification) and make a new one."""
    session.execute(update(SigningKey).where(SigningKey.active.is_(True)).values(active=False))
    return _new(session)


def signing_key(session: Session) -> tuple[str, RSAKey]:
    row = active_key(session)
    return row.kid, import_key(row.private_jwk)


def public_jwks(session: Session) -> dict[str, Any]:
    """Every key we ever signed with, public parts only, each with its kid."""
    active_key(session)
    rows = session.scalars(select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid)).all()
    keys = []
    for row in rows:
        public = import_key(row.private_jwk).as_dict(private=False)
        public.update(kid=row.kid, use="sig", alg=ID_TOKEN_ALG)
        keys.append(public)
    return {"keys": keys}
