"""OAuth 2 / SMART on FHIR state: registered clients, authorization codes, grants with their access and
refresh tokens, used assertion ids, and our signing keys. Secrets and tokens are stored hashed."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, JSONType, UTCDateTime, utcnow


class OAuthClient(Base):
    __tablename__ = "oauth_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: "none" (public), "client_secret_basic", or "private_key_jwt".
    auth_method: Mapped[str] = mapped_column(String(32), nullable=False)
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    redirect_uris: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    #: The most this client may ever be granted (space-separated SMART scopes).
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    jwks_url: Mapped[str | None] = mapped_column(String(500))
    #: Back-end clients act for a provider: they see what patients granted to that provider.
    provider_id: Mapped[str | None] = mapped_column(String(10), ForeignKey("provider.object_id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AuthorizationCode(Base):
    __tablename__ = "oauth_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("oauth_client.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(10), ForeignKey("user_account.object_id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(1000), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(10))
    code_challenge: Mapped[str] = mapped_column(String(128), nullable=False)
    code_challenge_method: Mapped[str] = mapped_column(String(8), nullable=False)
    nonce: Mapped[str | None] = mapped_column(String(255))
    auth_time: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: A second use of a code revokes what the first use produced (RFC 6749 4.1.2).
    grant_id: Mapped[str | None] = mapped_column(String(32))


class OAuthGrant(Base):
    """One authorization: everything issued under it (access and refresh tokens) ends together."""

    __tablename__ = "oauth_grant"

    grant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), ForeignKey("oauth_client.client_id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(10), ForeignKey("user_account.object_id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(10))
    #: The FHIR base the grant is for (the authorize request's `aud`): tokens work only there.
    audience: Mapped[str | None] = mapped_column(String(500))
    #: The signed-in person as a FHIR resource (id_token and introspection `fhirUser`).
    fhir_user: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthToken(Base):
    __tablename__ = "oauth_token"
    __table_args__ = (Index("ix_oauth_token_grant", "grant_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # "access" or "refresh"
    grant_id: Mapped[str] = mapped_column(String(32), ForeignKey("oauth_grant.grant_id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsedJti(Base):
    """Client assertion ids seen, kept until the assertion expires (Backend Services: never reused)."""

    __tablename__ = "oauth_used_jti"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class SigningKey(Base):
    """Our RSA keys for id_tokens; made on first start, old ones kept for verification after rotation."""

    __tablename__ = "oauth_signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_jwk: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
