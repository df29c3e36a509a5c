"""Provider: a practitioner or an organization (FHIR Practitioner / Organization)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import JSONType
from gateway.models.base import Record, parse_field

KINDS = ("practitioner", "organization")


class Provider(Record):
    __tablename__ = "provider"
    __parse_class__ = "Provider"

    name: Mapped[str] = mapped_column(String(500), nullable=False, info=parse_field("name", "String", required=True))
    kind: Mapped[str] = mapped_column(
        String(16), nullable=False, default="practitioner",
        info=parse_field("kind", "String", default="practitioner", choices=KINDS),
    )
    system_id: Mapped[str | None] = mapped_column(String(200), index=True, info=parse_field("systemId", "String"))
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSONType, info=parse_field("contact", "Object"))
    #: The provider's own login, if it has one: grants to this provider reach that user.
    user_id: Mapped[str | None] = mapped_column(
        String(10), ForeignKey("user_account.object_id"), index=True,
        info=parse_field("user", "Pointer", target="_User"),
    )
