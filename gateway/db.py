"""Database plumbing: the declarative base, shared column types, engine and session set-up.

One UTC timestamp type and one JSON type serve every model, so SQLite (the embedded default) and
PostgreSQL (production) store the same values the same way.
"""
from __future__ import annotations

import os
import string
from datetime import datetime, timezone
from typing import Annotated, Any

from sqlalchemy import JSON, DateTime, String, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from gateway.regexes import sqlite_regexp

_ALPHABET = string.ascii_letters + string.digits


_ALPHABET_BYTES = _ALPHABET.encode()
#: Random bytes below this map evenly onto the 62 letters and digits (4 x 62); the rest are drawn again.
_EVEN = 4 * len(_ALPHABET)


def random_alnum(length: int) -> str:
    """`length` letters and digits from the OS's CSPRNG, each equally likely. One os.urandom call for all of
    them: secrets.choice per character read the OS once per character (21 -> 3 us for ten; a Bundle makes
    two ids per resource)."""
    out = bytearray()
    while len(out) < length:
        out.extend(_ALPHABET_BYTES[b % 62] for b in os.urandom(2 * length) if b < _EVEN)
    return out[:length].decode()


def new_object_id() -> str:
    """Ten random alphanumerics, as Parse Server makes them; also the record's FHIR id."""
    return random_alnum(10)


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond: what a UTCDateTime column keeps, so a row just written holds the
    instant a later read gives back (and binding it needs no change)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is timezone.utc and not value.microsecond % 1000 and dialect.name != "sqlite":
            return value  # (most values: what utcnow() makes at a whole millisecond, dates at midnight)
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        # Milliseconds, as Parse's Date carries them: a createdAt read back and queried with
        # equality or $lte must match the stored instant (query values are truncated the same way).
        value = value.astimezone(timezone.utc)
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect, coltype):
        if dialect.name == "postgresql":
            # Our PostgreSQL connections run in UTC (gateway/pg.py), so the driver already gives aware UTC
            # datetimes: nothing to do per value (4 of a record's columns, per row read).
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


JSONType = JSON().with_variant(JSONB(), "postgresql")

ObjectId = Annotated[str, mapped_column(String(10), primary_key=True, default=new_object_id)]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime, default=utcnow, nullable=False)]
OptionalTimestamp = Annotated[datetime | None, mapped_column(UTCDateTime, nullable=True)]
JSONValue = Annotated[Any, mapped_column(JSONType, nullable=True)]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[str]: JSONType}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout, foreign keys and a REGEXP function."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "postgresql":
        from gateway import pg

        pg.install(engine, ping_when_idle=not kwargs.get("pool_pre_ping"))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.create_function("regexp", 2, sqlite_regexp, deterministic=True)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url.rstrip("/") != "sqlite:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # Let SQLAlchemy, not the driver, open transactions, so SAVEPOINTs (batch, FHIR transaction
            # bundles) work. BEGIN IMMEDIATE takes the write lock up front: concurrent gunicorn workers
            # then wait (busy timeout) instead of failing with "database is locked" on a lock upgrade.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # A long read (a bulk export's stream) must not hold the write lock: in WAL mode a deferred
            # BEGIN lets writers go on while it reads its snapshot.
            read_only = conn.get_execution_options().get("phr_read_only")
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def read_only_session(factory: sessionmaker[Session]) -> Session:
    """A Session for long reads that never write (exports)."""
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine):
        return factory(bind=bind.execution_options(phr_read_only=True))
    return factory()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)
