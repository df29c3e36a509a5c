"""The FHIR face's materialized view of the store: each record's current FHIR resource, its FHIR history,
and a search index. All three are derived from the native rows on every write (services/fhir_store.py)
and can be rebuilt from them; the native rows stay the one truth."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime


class FhirResource(Base):
    __tablename__ = "fhir_resource"
    __table_args__ = (
        Index("ix_fhir_resource_type_updated", "resource_type", "last_updated"),
        Index("ix_fhir_resource_profile", "profile_id", "resource_type"),
        Index("ix_fhir_resource_source", "class_name", "source_id"),
    )

    resource_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The native record it is made from (Profile for a Patient and for its blood-group Observation).
    class_name: Mapped[str] = mapped_column(String(32), nullable=False)
    source_id: Mapped[str] = mapped_column(String(10), nullable=False)
    #: The patient compartment it belongs to, and its sharing category (DESIGN.md scope), for the policy.
    profile_id: Mapped[str | None] = mapped_column(String(10))
    category: Mapped[str | None] = mapped_column(String(16))
    version_id: Mapped[int] = mapped_column(Integer, nullable=False)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: The resource as JSON text (meta included), served as it is: no parse and re-serialize per read.
    body: Mapped[str] = mapped_column(Text, nullable=False)


class FhirHistory(Base):
    __tablename__ = "fhir_history"
    __table_args__ = (Index("ix_fhir_history_type_updated", "resource_type", "last_updated"),)

    resource_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: "create", "update" or "delete" (Bundle.entry.request.method in history bundles).
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    body: Mapped[str | None] = mapped_column(Text)


def _partial(name: str, present: str, *columns: str) -> Index:
    """An index of the rows whose `present` column is set."""
    where = text(f"{present} IS NOT NULL")
    return Index(name, *columns, postgresql_where=where, sqlite_where=where)


class FhirIndex(Base):
    """One searchable value of one parameter of one resource. Sparse columns by parameter type:
    token: system, value (code), norm (display/text, normalized); string: value, norm; date: low, high;
    reference: target_type, target_id, value (the literal); quantity/number: number, system, value (unit
    code); uri: value."""

    __tablename__ = "fhir_index"
    __table_args__ = (
        Index("ix_fhir_index_resource", "resource_type", "resource_id"),
        # `value` is set on most rows; the other value indexes hold only the rows that have their column
        # (a row fills one or two of the sparse columns, and every index it enters costs each write: a
        # Bundle writes ~19 rows per resource). A search names the column it compares (`norm LIKE ...`,
        # or `low IS NOT NULL` for dates, which always have both ends), which is what lets PostgreSQL and
        # SQLite use a partial index. `value` stays whole: partial, it saved little. On PostgreSQL,
        # migration 0011 also keeps extended statistics of (resource_type, param, value | target_id), so
        # the planner knows how common a code is among one parameter's values.
        Index("ix_fhir_index_value", "resource_type", "param", "value"),
        _partial("ix_fhir_index_norm", "norm", "resource_type", "param", "norm"),
        _partial("ix_fhir_index_date", "low", "resource_type", "param", "low", "high"),
        _partial("ix_fhir_index_number", "number", "resource_type", "param", "number"),
        _partial("ix_fhir_index_target", "target_id", "target_type", "target_id", "param"),
        # A reference search by plain id (`Observation?patient=<id>`) names no target type: without this
        # index it scans every `patient` entry of the type (bench/explain.py, docs/PERFORMANCE.md).
        _partial("ix_fhir_index_ref", "target_id", "resource_type", "param", "target_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(40), nullable=False)
    resource_id: Mapped[str] = mapped_column(String(64), nullable=False)
    param: Mapped[str] = mapped_column(String(64), nullable=False)
    system: Mapped[str | None] = mapped_column(String(300))
    value: Mapped[str | None] = mapped_column(String(500))
    norm: Mapped[str | None] = mapped_column(String(500))
    low: Mapped[datetime | None] = mapped_column(UTCDateTime)
    high: Mapped[datetime | None] = mapped_column(UTCDateTime)
    number: Mapped[float | None] = mapped_column(Float)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
