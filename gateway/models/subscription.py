"""FHIR R4 Subscriptions (hl7.org/fhir/R4/subscription.html). A Subscription is not a PHR record: it has
no native class and no profile, it belongs to whoever created it (a user, a back-end client, the master
key), and the server manages its status and error as it delivers notifications."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, JSONType, UTCDateTime, utcnow


class FhirSubscription(Base):
    __tablename__ = "fhir_subscription"
    __table_args__ = (
        Index("ix_fhir_subscription_active", "status", "channel_type", "resource_type"),
        Index("ix_fhir_subscription_owner", "owner_user_id", "owner_client_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: requested | active | error | off (R4 SubscriptionStatus); the server moves it, not the client.
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    criteria: Mapped[str] = mapped_column(Text, nullable=False)
    #: The criteria's resource type, so an event looks only at the subscriptions it can concern.
    resource_type: Mapped[str] = mapped_column(String(40), nullable=False)
    channel_type: Mapped[str] = mapped_column(String(16), nullable=False)  # rest-hook | websocket
    endpoint: Mapped[str | None] = mapped_column(String(2000))
    payload: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[list[str] | None] = mapped_column(JSONType)
    end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    #: Failed delivery attempts in a row; the subscription is turned off when it reaches the limit.
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: Who created it (gateway.services.bulk.principal_json); notifications use that principal's access
    #: as it is when each notification is sent.
    owner: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    owner_user_id: Mapped[str | None] = mapped_column(String(10))
    owner_client_id: Mapped[str | None] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: The resource as the client wrote it (without meta, status and error, which the server fills in).
    body: Mapped[str] = mapped_column(Text, nullable=False)
