"""What every PHR record shares, and how a column declares its place in the native (Parse) contract.

A column that is part of the native contract carries `info=parse_field(...)`: its Parse field name, Parse
type, whether it is required, its default and its allowed values. `gateway.schema` reads these to build
the one class registry that validation, queries, `/schemas` and serialization all use, so the contract is
written once, next to the column it describes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gateway.db import Base, JSONType, ObjectId, OptionalTimestamp, Timestamp, UTCDateTime


def parse_field(
    name: str,
    type_: str,
    *,
    required: bool = False,
    target: str | None = None,
    default: Any = None,
    choices: tuple[str, ...] | None = None,
    item_choices: tuple[str, ...] | None = None,
    server_managed: bool = False,
    text_attr: str | None = None,
) -> dict[str, Any]:
    """Describe a column's native field. `text_attr` pairs a number column with a text column (Mixed)."""
    return {
        "parse": {
            "name": name,
            "type": type_,
            "required": required,
            "target": target,
            "default": default,
            "choices": choices,
            "item_choices": item_choices,
            "server_managed": server_managed,
            "text_attr": text_attr,
        }
    }


class Record(Base):
    """Columns every native class has: id, timestamps, version counter, ACL, soft delete, FHIR leftovers."""

    __abstract__ = True
    #: The Parse class name; set by each model.
    __parse_class__: str = ""
    #: The sharing category (DESIGN.md scope values) of a profile's record, or None.
    __category__: str | None = None
    #: Soft-deleted records stay (FHIR answers 410 Gone); user accounts and sessions are really deleted.
    __soft_delete__: bool = True

    object_id: Mapped[ObjectId]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    deleted_at: Mapped[OptionalTimestamp]
    acl: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    #: FHIR elements that have no column, kept losslessly (the mappings' `_fhir` key).
    fhir: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    #: Who made the current version: a user id, "client:<id>" or "master". A record a provider wrote
    #: through a write grant shows that provider in FHIR (meta.source).
    written_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ProfileRecord(Record):
    """A record that belongs to one patient's profile (the FHIR patient compartment)."""

    __abstract__ = True

    @declared_attr
    def profile_id(cls) -> Mapped[str]:
        return mapped_column(
            String(10), ForeignKey("profile.object_id"), nullable=False,
            info=parse_field("profile", "Pointer", required=True, target="Profile"),
        )

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        # A profile's records in the native API's default order (objectId): a query for one page reads
        # that page from the index, and PostgreSQL's plan for it is the same whatever the profile, so a
        # prepared statement keeps one plan instead of being planned at every run (docs/PERFORMANCE.md).
        return (Index(f"ix_{cls.__tablename__}_profile_object", "profile_id", "object_id"),)


def date_field(name: str, *, required: bool = False, server_default_now: bool = False) -> Mapped[datetime]:
    return mapped_column(
        UTCDateTime, nullable=not required,
        info=parse_field(name, "Date", required=required, default="now" if server_default_now else None),
    )
