"""Rows a write has decided on, sent to the database together: a few INSERTs per table, not one per row.

Each record a transaction Bundle creates writes ~30 rows: the record, its ACL entry, its version, its FHIR
resource, history and ~10 search index rows, then the same again for its audit row and that row's
AuditEvent. Sent as they were made, that was ~36 statements per record. ObjectService, FhirStore and
audit.record write through a `scope` instead; the outermost scope (a whole Bundle, or one write) sends what
it holds when it ends.

- Every row goes out as a plain row, one statement per table: ACL entries, versions, new FHIR resources,
  their history and index rows are made as dicts; a new record or audit row is made as its mapped object
  (the services read its attributes) and `add_new` takes its columns, so it never enters the Session (its
  unit of work cost ~10 % of a Bundle's CPU). On PostgreSQL a table goes by COPY (a Bundle's ~1,500 index rows:
  1.6 ms of client CPU by COPY, 14 by executemany, and less server time), or by one INSERT when it has only
  a few rows, on the driver's cursor with values bound as SQLAlchemy would (JSON as text); a table with
  other column types, and every table on SQLite, by executemany.
  Tables go in foreign-key order (a Bundle's Practitioner before the records that name it, its Patient's
  profile before its records).
- Nothing is hidden from reads: any statement the Session runs first sends the buffered rows (and the
  ORM's autoflush the pending objects), as do a flush, a commit and the start or release of a SAVEPOINT.
  A rollback drops them. A new record that points to an object still pending in the Session (a profile
  for an account made in the same request) is taken only after a flush.
  A scope never spans a commit (services do not commit).
- What every entry of a Bundle asks again (does this profile exist, who owns it, may this caller create
  records there) is remembered for the scope (`remember`), and forgotten when a profile, a grant, a
  provider or an account is written (`forget`), and on a rollback.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

import orjson

from sqlalchemy import JSON, Boolean, Float, Integer, String, Table, event, inspect, insert, null
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql.elements import Null

from gateway import access, caller_cache
from gateway.db import Base, UTCDateTime
from gateway.pg import ensure_transaction

_KEY = "phr_write_buffer"
T = TypeVar("T")


class WriteBuffer:
    def __init__(self, session: Session):
        self.session = session
        #: Plain rows per table, in the order they were made.
        self.rows: dict[Table, list[dict[str, Any]]] = {}
        #: (table, primary key) of the Session's new objects, not flushed yet.
        self.pending: set[tuple[str, Any]] = set()
        for obj in session.new:
            self.track(obj)
        #: The FHIR resources written in this scope, by (type, id): a new one's row, else the object. The
        #: writer answers with them.
        self.resources: dict[tuple[str, str], Any] = {}
        self.memo: dict[Any, Any] = {}
        #: Work done once when the outermost scope ends, by key (a Patient re-stored once for all the
        #: contacts a Bundle adds), unless `settle` runs it earlier. It must read what it needs when it runs.
        self.deferred: dict[Any, Callable[[], None]] = {}
        #: Writes audited together, per (caller, action, profile): None unless audit.group_writes asked.
        self.audit_groups: dict[tuple[Any, str, str | None], dict[str, dict[str, None]]] | None = None
        #: The face they came through (audit details "via").
        self.audit_via: str | None = None
        # Held to send rows before a SAVEPOINT is opened (it is the one connection of the transaction).
        self.connection = session.connection()

    # ---- adding ----

    def add_new(self, obj: Base) -> None:
        """A new record: its columns go out as a plain row of its table. The object stays outside the
        Session (transient): a later read in the transaction loads the stored row, as for any record."""
        refs = _references(type(obj))
        if self.pending and any((table, getattr(obj, attr)) in self.pending for attr, table in refs):
            self.flush()  # what it points to must be written first
        self.rows.setdefault(obj.__table__, []).append(_columns_of(obj))
        caller_cache.remember_new(self.session, obj)

    def track(self, obj: Any) -> None:
        """Note a new object of the Session (whoever added it), for `add`."""
        pk = _pk_attr(type(obj))
        if pk is not None:
            self.pending.add((obj.__table__.name, getattr(obj, pk)))

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Rows for `table`, which no foreign key may point to or from (a record's go by `add_new`); a
        table's rows all carry the same keys (those of the columns to set)."""
        if rows:
            if table.foreign_keys:
                raise ValueError(f"{table.name} has foreign keys: add its rows as objects")
            self.rows.setdefault(table, []).extend(rows)

    # ---- per-scope answers ----

    def remember(self, key: Any, compute: Callable[[], T]) -> T:
        try:
            return self.memo[key]
        except KeyError:
            value = self.memo[key] = compute()
            return value
        except TypeError:  # an unhashable key (never expected): no memo
            return compute()

    def once(self, key: Any, work: Callable[[], None]) -> None:
        """Run `work` once before the scope's rows are sent, however often it is asked for under `key`."""
        self.deferred.setdefault(key, work)

    def settle(self) -> None:
        """Run the deferred work now (before a read that must see it)."""
        while self.deferred:
            key = next(iter(self.deferred))
            self.deferred.pop(key)()

    def forget(self) -> None:
        """A profile was changed or deleted, or a grant, provider or account written: the answers may have
        changed."""
        self.memo.clear()
        access.forget_ownership(self.session)

    # ---- sending ----

    def send_rows(self, connection=None) -> None:
        """Send the plain rows: one statement (executemany, INSERT or COPY) per table, in foreign-key order."""
        if not self.rows:
            return
        rows, self.rows = self.rows, {}
        conn = connection if connection is not None else self.session.connection()
        for table in sorted(rows, key=_rank().__getitem__):
            batch = rows[table]
            if conn.dialect.name == "postgresql" and _copyable(table):
                _send_plain(conn, table, batch)
            else:
                conn.execute(insert(table), batch)

    def flush(self) -> None:
        self.send_rows()
        self.session.flush()
        self.pending.clear()

    def discard(self) -> None:
        # Deferred work stays: it reads the database as it is when it runs (contacts re-read), so a rolled
        # back SAVEPOINT inside the scope leaves it right; an error out of the scope drops the buffer.
        # Audit groups stay too: the one scope that groups (a FHIR transaction) opens no SAVEPOINT inside it
        # and ends at its first error.
        self.rows.clear()
        self.pending.clear()
        self.resources.clear()
        self.memo.clear()


def current(session: Session) -> WriteBuffer | None:
    return session.info.get(_KEY)


@contextmanager
def scope(session: Session) -> Iterator[WriteBuffer]:
    """Write through a buffer; the outermost scope sends everything when it ends, and drops it on an error
    (the caller then rolls back its transaction or SAVEPOINT, as before)."""
    outer = session.info.get(_KEY)
    if outer is not None:
        yield outer
        return
    buffer = session.info[_KEY] = WriteBuffer(session)
    # Only a Session in a scope pays for a look at each statement.
    event.listen(session, "do_orm_execute", _before_statement)
    try:
        yield buffer
        buffer.settle()
        buffer.flush()
    finally:
        event.remove(session, "do_orm_execute", _before_statement)
        session.info.pop(_KEY, None)


@cache
def _pk_attr(cls: type) -> str | None:
    """The attribute holding a single-column primary key (None when composite: nothing points to those)."""
    mapper = inspect(cls)
    if len(mapper.primary_key) != 1:
        return None
    return mapper.get_property_by_column(mapper.primary_key[0]).key


@cache
def _references(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, table it points to) for each foreign key of the class's table."""
    mapper = inspect(cls)
    return tuple((mapper.get_property_by_column(fk.parent).key, fk.column.table.name)
                 for fk in mapper.local_table.foreign_keys)


@cache
def _rank() -> dict[Table, int]:
    """Each table's place in an order where a table comes after those its foreign keys point to."""
    return {table: i for i, table in enumerate(Base.metadata.sorted_tables)}


@cache
def _insert_plan(cls: type) -> tuple[tuple[str, str, Any, Any], ...]:
    """(column key, attribute, value when the attribute is not set, value when it is None) for each column
    of the class's table, as the ORM's flush decides them: a column left out gets its default, else SQL
    NULL; None is SQL NULL (or the default) except in a JSON column, where it is JSON null."""
    mapper = inspect(cls)
    plan = []
    for column in mapper.local_table.columns:
        default = column.default
        if default is not None and not (default.is_scalar or default.is_callable):
            raise TypeError(f"{column}: a SQL default is not computed here")
        # SQLAlchemy wraps a column default's function to take the execution context; ours ignore it.
        unset = default.arg if default is not None else (null() if column.type.should_evaluate_none else None)
        none = None if column.type.should_evaluate_none or default is None else default.arg
        plan.append((column.key, mapper.get_property_by_column(column).key, unset, none))
    return tuple(plan)


_UNSET = object()


def _columns_of(obj: Any) -> dict[str, Any]:
    """A new object's row, as the ORM's flush would insert it (`_insert_plan`)."""
    state = obj.__dict__
    row = {}
    for key, attr, unset, none in _insert_plan(type(obj)):
        value = state.get(attr, _UNSET)
        if value is _UNSET:
            value = unset
        elif value is None:
            value = none
        row[key] = value(None) if callable(value) else value
    return row


@cache
def _copyable(table: Table) -> bool:
    """Whether every column is a type COPY's text format takes as `_send_plain` writes it: psycopg's own
    text, numbers and booleans, times as UTCDateTime binds them, JSON as text (PostgreSQL parses it)."""
    return all(isinstance(c.type, (String, Integer, Float, Boolean, UTCDateTime, JSON)) for c in table.columns)


def _json_text(value: Any) -> str | None:
    """A JSON column's value as SQLAlchemy's JSON type binds it: None is JSON null, `null()` SQL NULL."""
    if isinstance(value, Null):
        return None
    return orjson.dumps(value).decode()


#: Up to this many rows go out as one multi-row INSERT, more by COPY: COPY costs two round trips, which a
#: single write's one or two rows per table do not win back (a native create: 2.9 -> 2.0 ms of CPU, most
#: of it from the other changes of that commit); from ~16 rows on COPY is cheaper again.
COPY_FROM_ROWS = 4


def _send_plain(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY ... FROM STDIN (or, for a few rows, one INSERT) in the connection's transaction, values bound as
    SQLAlchemy's INSERT would bind them."""
    dialect = conn.dialect
    keys = list(rows[0])
    columns = [table.c[k] for k in keys]
    # UTCDateTime (UTC, milliseconds) and JSON (text) change values on the way in; the others pass through.
    times = [i for i, c in enumerate(columns) if isinstance(c.type, UTCDateTime)]
    documents = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
    quote = dialect.identifier_preparer
    target = f"{quote.format_table(table)} ({', '.join(quote.quote(c.name) for c in columns)})"
    values = []
    for row in rows:
        row_values = [row[k] for k in keys]
        for i in times:
            row_values[i] = columns[i].type.process_bind_param(row_values[i], dialect)
        for i in documents:
            row_values[i] = _json_text(row_values[i])
        values.append(row_values)
    driver = conn.connection.driver_connection
    ensure_transaction(driver)  # a request's first write (gateway/pg.py)
    with driver.cursor() as cursor:
        if len(values) <= COPY_FROM_ROWS:
            one = "(" + ", ".join(["%s"] * len(keys)) + ")"
            cursor.execute(f"INSERT INTO {target} VALUES " + ", ".join([one] * len(values)),
                           [v for row_values in values for v in row_values])
            return
        with cursor.copy(f"COPY {target} FROM STDIN") as copy:
            for row_values in values:
                copy.write_row(row_values)


# ---- keeping reads, SAVEPOINTs and commits in step with the buffer ----

def _before_statement(state: ORMExecuteState) -> None:
    buffer = state.session.info.get(_KEY)
    if buffer is not None and buffer.rows:
        buffer.send_rows()


@event.listens_for(Session, "after_transaction_create")
def _before_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # The SAVEPOINT itself is sent when the new transaction first uses the connection: rows made before it
    # go first, on the connection directly, so that rolling the SAVEPOINT back keeps them.
    buffer = session.info.get(_KEY)
    if buffer is not None and transaction.nested and not buffer.connection.closed:
        buffer.send_rows(buffer.connection)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context, _instances) -> None:
    # Objects the Session writes may point to records sent as plain rows (an audit row to a new profile).
    buffer = session.info.get(_KEY)
    if buffer is not None:
        buffer.send_rows()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:  # also a SAVEPOINT's release
    buffer = session.info.get(_KEY)
    if buffer is not None:
        buffer.send_rows()


@event.listens_for(Session, "transient_to_pending")
def _pending(session: Session, obj: Any) -> None:
    buffer = session.info.get(_KEY)
    if buffer is not None:
        buffer.track(obj)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context) -> None:
    buffer = session.info.get(_KEY)
    if buffer is not None:
        buffer.pending.clear()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: SessionTransaction) -> None:
    access.forget_ownership(session)  # what it learnt may have been rolled back (a profile it created)
    buffer = session.info.get(_KEY)
    if buffer is not None:
        buffer.discard()
