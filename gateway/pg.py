"""PostgreSQL connections as the gateway uses them (gateway/db.make_engine installs this).

- **Tested only after sitting idle.** pool_pre_ping costs a round trip per request. A connection idle for
  IDLE_PING_SECONDS or more is tested before use (a restart or an idle timeout happens while a connection
  waits in the pool); one that fails is replaced (DisconnectionError: the pool retries with a new one). One
  that breaks while busy fails that request, and SQLAlchemy then discards the whole pool.
- **JSONB parsed by orjson** (ACLs, FHIR leftovers): the stdlib parser was ~7 % of a 20-row native query.
- **Sessions in UTC** whatever the server's TimeZone: psycopg then gives timestamps as datetimes in UTC,
  which the UTCDateTime columns take as they come (gateway/db.py).
- **BEGIN only when a request writes.** A request's Session (gateway/extensions.py marks it DEFERRED_BEGIN)
  runs on a connection in autocommit until its first write: a read-only request is then one round trip per
  statement instead of BEGIN + statements + COMMIT (two of a GET's three round trips, on our side and on
  the database's). The first INSERT, UPDATE, DELETE, SAVEPOINT or NOTIFY opens the transaction, so every
  write of a request still commits or rolls back together; psycopg's commit() and rollback() look at the
  server's transaction state and send COMMIT or ROLLBACK only when one is open. Under READ COMMITTED each
  statement has its own snapshot with or without BEGIN, so reads see the same data either way. Connections
  go back to the pool in psycopg's default mode, so other sessions (export workers, the CLI) are unchanged.
"""
from __future__ import annotations

import json
import time
from typing import Any

import orjson
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

#: A pooled connection unused for longer than this is tested (SELECT 1) before a request gets it.
IDLE_PING_SECONDS = 2.0
#: session.info flag: this Session opens its transaction at its first write (request sessions).
DEFERRED_BEGIN = "phr_deferred_begin"
#: What opens the transaction of a deferred session, for statements SQLAlchemy did not compile itself.
_WRITES = ("INSERT", "UPDATE", "DELETE", "SAVEPOINT", "SELECT PG_NOTIFY", "LOCK", "WITH", "MERGE", "COPY")
IDLE = TransactionStatus.IDLE


def install(engine: Engine, *, ping_when_idle: bool = True) -> None:
    if ping_when_idle:
        event.listen(engine, "checkout", _checkout)
    event.listen(engine, "checkin", _checkin)
    event.listen(engine, "connect", _connect)
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)


def loads_json(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # what orjson refuses and json takes (integers beyond 64 bits)
        return json.loads(data)


def _connect(dbapi_conn, _record) -> None:
    set_json_loads(loads_json, dbapi_conn)
    if dbapi_conn.info.parameter_status("TimeZone") != "UTC":
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        dbapi_conn.execute("SET TIME ZONE 'UTC'")
        dbapi_conn.autocommit = autocommit


def _checkout(dbapi_conn, record, _proxy) -> None:
    since = record.info.pop("phr_idle_since", None)
    if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
        return
    try:
        dbapi_conn.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as e:  # noqa: BLE001 - any failure means: not usable, get a new one
        raise DisconnectionError(f"stale pooled connection: {type(e).__name__}") from e


def _checkin(dbapi_conn, record) -> None:
    if dbapi_conn is None:  # invalidated
        return
    record.info["phr_idle_since"] = time.monotonic()
    if dbapi_conn.autocommit:
        try:
            if dbapi_conn.info.transaction_status != IDLE:
                dbapi_conn.rollback()
            dbapi_conn.autocommit = False
        except Exception:  # noqa: BLE001 - a broken connection: let the next checkout's test find it
            record.info["phr_idle_since"] = 0.0


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, _transaction, connection) -> None:
    if not session.info.get(DEFERRED_BEGIN) or connection.dialect.name != "postgresql":
        return
    dbapi_conn = connection.connection.dbapi_connection
    # Only a connection with nothing open (a test's outer transaction keeps its connection as it is).
    if dbapi_conn is not None and not dbapi_conn.autocommit and dbapi_conn.info.transaction_status == IDLE:
        dbapi_conn.autocommit = True


def ensure_transaction(dbapi_conn) -> None:
    """Open the deferred transaction if it is not yet: for writes that do not go through SQLAlchemy's
    execution (COPY, gateway/services/write_buffer.py)."""
    if dbapi_conn.autocommit and dbapi_conn.info.transaction_status == IDLE:
        dbapi_conn.execute("BEGIN")


def _before_cursor_execute(conn, cursor, statement: str, _params, context, _many) -> None:
    dbapi_conn = cursor.connection
    if not dbapi_conn.autocommit or dbapi_conn.info.transaction_status != IDLE:
        return
    writes = context is not None and (context.isinsert or context.isupdate or context.isdelete)
    if writes or statement.lstrip()[:16].upper().startswith(_WRITES):
        dbapi_conn.execute("BEGIN")
