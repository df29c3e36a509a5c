"""Rows a write has decided on, sent to the database together: one statement per table, not one per row.

Each record a transaction Bundle creates writes ~11 rows: the record, its ACL entry, its FHIR resource, its
history and ~7 search index rows (and its share of the Bundle's audit rows). Sent as they were made, that
was ~36 statements per record once. ObjectService, FhirStore and audit.record write through a `scope`
instead; the outermost scope (a whole Bundle, or one write) sends what it holds when it ends.

- Every new row is a plain row: ACL entries, versions, new FHIR resources, their history and index rows are
  made as dicts; a new record or audit row is made as its mapped object (the services read its attributes)
  and `add_new` takes its columns, so it never enters the Session (its unit of work cost ~10 % of a
  Bundle's CPU). services/plain_rows.py sends them: tables in foreign-key order (a Bundle's Practitioner
  before the records that name it), on PostgreSQL by COPY or, for a few rows, one INSERT.
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
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from gateway import access, caller_cache
from gateway.db import Base
from gateway.services import plain_rows

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
        #: The version each FHIR resource got in this scope, by (type, id). A resource stored again in the
        #: same scope keeps it (services/fhir_store.py, `_put`).
        self.versions: dict[tuple[str, str], Version] = {}
        #: How many times rows were sent: a Version made at the same count still has its rows here.
        self.sent = 0
        #: Profiles made in this scope, by id: the row, its record and the EmergencyContacts made for it
        #: since, for the Patient that shows them (services/fhir_store.py). Dropped when either is changed
        #: otherwise in the scope.
        self.new_profiles: dict[str, NewProfile] = {}
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
        self.rows.setdefault(obj.__table__, []).append(plain_rows.columns_of(obj))
        caller_cache.remember_new(self.session, obj)

    def track(self, obj: Any) -> None:
        """Note a new object of the Session (whoever added it), for `add_new`."""
        pk = _pk_attr(type(obj))
        if pk is not None:
            self.pending.add((obj.__table__.name, getattr(obj, pk)))

    def replace(self, table: Table, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        """Rows of `table` waiting here: `old` (these very dicts) give way to `new`."""
        gone = {id(row) for row in old}
        kept = [row for row in self.rows.get(table, ()) if id(row) not in gone]
        kept.extend(new)
        if kept:
            self.rows[table] = kept
        else:
            self.rows.pop(table, None)

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Rows for `table`, which no foreign key may point to or from (a record's go by `add_new`); a
        table's rows all carry the same keys (those of the columns to set)."""
        if rows:
            if table.foreign_keys:
                raise ValueError(f"{table.name} has foreign keys: add its objects with add_new")
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
        """Send the plain rows: one statement per table, in foreign-key order (services/plain_rows.py)."""
        if not self.rows:
            return
        rows, self.rows = self.rows, {}
        self.sent += 1
        plain_rows.send(connection if connection is not None else self.session.connection(), rows)

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
        self.versions.clear()  # a resource stored again after this makes a new version (rolled back or not)
        self.new_profiles.clear()
        self.memo.clear()


@dataclass(slots=True)
class Version:
    """A FHIR resource's version made in a scope: its number, history method and lastUpdated; the `sent`
    count it was made at, and its history and index rows (waiting in the buffer while `sent` is current)."""
    number: int
    method: str
    now: Any
    sent: int
    history: dict[str, Any] | None
    index: list[dict[str, Any]]


@dataclass(slots=True)
class NewProfile:
    row: Any
    record: dict[str, Any]
    #: (createdAt, objectId, record) of each EmergencyContact made for it in the scope.
    contacts: list[tuple[Any, str, dict[str, Any]]] = field(default_factory=list)


def new_object(model: type[Base], **values: Any) -> Any:
    """A new object of a mapped class for `add_new`, made without the constructor's attribute events (a
    Bundle's records spent ~5 % of their CPU in them): it never enters the Session, so nothing needs to
    know what was set. Its attributes read as set (unset: None); `values` must name mapped columns."""
    unknown = values.keys() - _column_attrs(model)
    if unknown:
        raise TypeError(f"{model.__name__} has no column attribute {sorted(unknown)}")
    obj = model.__mapper__.class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


@cache
def _column_attrs(model: type) -> frozenset[str]:
    return frozenset(prop.key for prop in inspect(model).column_attrs)


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
