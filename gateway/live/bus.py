"""The change bus: how a committed write reaches the live subscribers of every process.

- PostgreSQL: LISTEN/NOTIFY on one channel. The NOTIFY is sent inside the writing transaction (a
  `before_commit` hook, in every process that loads the app: web processes, workers, the CLI), so
  PostgreSQL delivers it exactly when the transaction commits, and never for a rolled-back transaction
  or SAVEPOINT. Each web process holds one dedicated psycopg connection that LISTENs, read by one
  thread. The payload is a JSON array of ChangeEvents (as many as fit, in order): ids and kinds only,
  never health data (NOTIFY payloads are visible to any session of the database and are limited to 8000
  bytes).
- SQLite (one process): in-process delivery after commit.

Neither polls the database. The channel is named after the schema in use, so deployments (and test runs)
sharing one PostgreSQL database in different schemas do not hear each other.

One listening process is the *leader* (a session-level advisory lock held by its listener connection,
tried again whenever a notification arrives): it alone sends rest-hook notifications, so each is sent
once whatever the number of processes; when it stops, its lock goes with its connection and the next
process to hear a change takes over.
"""
from __future__ import annotations

import logging
import threading
import weakref
import zlib
from collections.abc import Callable

import orjson
import psycopg
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from gateway import events
from gateway.events import ChangeEvent

log = logging.getLogger("gateway.live.bus")
Handler = Callable[[ChangeEvent], None]

#: How long the listener waits for a notification before it looks at its stop flag.
WAKE_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0
_channels: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; changes travel as JSON arrays below that.
MAX_PAYLOAD = 7900


def encode(change: ChangeEvent) -> str:
    return orjson.dumps(change.to_dict()).decode()


def payloads(changes: list[ChangeEvent]) -> list[str]:
    """The changes, in order, as JSON arrays of at most MAX_PAYLOAD bytes: one NOTIFY carries ~80 of a
    transaction's changes instead of one (each notification costs every listening process a wake-up)."""
    out: list[bytes] = []
    part: list[bytes] = []
    size = 2
    for change in changes:
        item = orjson.dumps(change.to_dict())
        if part and size + len(item) + 1 > MAX_PAYLOAD:
            out.append(b"[" + b",".join(part) + b"]")
            part, size = [], 2
        part.append(item)
        size += len(item) + 1
    if part:
        out.append(b"[" + b",".join(part) + b"]")
    return [p.decode() for p in out]


def decode(payload: str) -> list[ChangeEvent]:
    """The changes of one notification: an array of them, or one (`encode`, and older processes)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = None
    items = data if isinstance(data, list) else [data]
    changes = []
    for d in items:
        try:
            changes.append(ChangeEvent(str(d["class_name"]), str(d["object_id"]), d.get("profile_id"),
                                       str(d["kind"]), int(d["version"])))
        except (KeyError, TypeError, ValueError):
            log.warning("ignored a malformed change notification")
    return changes


# ---- publishing on PostgreSQL: inside the transaction ----

@sa_event.listens_for(Session, "before_commit")
def _notify_in_transaction(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released: the real commit sends
        return
    changes = events.pending(session)
    if not changes:
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    if engine.dialect.name != "postgresql":
        return
    conn = session.connection()
    channel = channel_for(engine, conn)
    # One statement for all of them (a transaction Bundle makes one change per resource, ~80 to a
    # notification), in the order they were made. The payloads go as one JSON array of strings: as a
    # text[] the driver escaped every quote of every payload with a regular expression (~2.5 % of a
    # Bundle's samples in py-spy); orjson escapes them in C, and PostgreSQL reads them back in order with
    # json_array_elements_text.
    conn.execute(text("SELECT pg_notify(:channel, p) FROM json_array_elements_text(CAST(:payloads AS json)) "
                      "WITH ORDINALITY AS t(p, n) ORDER BY n"),
                 {"channel": channel, "payloads": orjson.dumps(payloads(changes)).decode()})


def channel_for(engine: Engine, conn: Connection | None = None) -> str:
    name = _channels.get(engine)
    if name is None:
        if conn is not None:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
        else:
            with engine.connect() as c:
                schema = c.execute(text("SELECT current_schema()")).scalar()
        name = ("phr_changes" if (schema or "public") == "public" else f"phr_changes_{schema}")[:63]
        _channels[engine] = name
    return name


# ---- the buses ----

class LocalBus:
    """One process: publishing calls the handler directly (SQLite, and tests on a rolled-back connection)."""

    kind = "local"
    is_leader = True

    def __init__(self, handler: Handler):
        self.handler = handler

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def publish(self, change: ChangeEvent) -> None:
        self.handler(change)


class PgBus:
    """LISTEN/NOTIFY across processes (see the module docstring)."""

    kind = "pg"

    def __init__(self, engine: Engine, handler: Handler):
        self.engine = engine
        self.handler = handler
        self.is_leader = False
        #: Counts LISTEN connections: what was heard before a reconnect may have missed notifications.
        self.epoch = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def publish(self, change: ChangeEvent) -> None:
        """Nothing to do: the writing transaction sent the NOTIFY (see _notify_in_transaction)."""

    @property
    def channel(self) -> str:
        return channel_for(self.engine)

    def start(self, wait: float = 5.0) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._ready.clear()
            self._thread = threading.Thread(target=self._run, name="phr-live-listen", daemon=True)
            self._thread.start()
        # Wait (bounded) until LISTEN is in place, so that what commits after start() is heard.
        self._ready.wait(wait)

    def stop(self, wait: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)
        self._thread = None

    @property
    def listening(self) -> bool:
        return self._ready.is_set() and self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo(self.engine), autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')
                    self._try_lead(conn)
                    self.epoch += 1
                    self._ready.set()
                    delay = 0.2
                    while not self._stop.is_set():
                        # stop_after=1: return as soon as something arrived (the generator holds the
                        # connection's lock, so the handler runs after it, not inside it).
                        notes = list(conn.notifies(timeout=WAKE_SECONDS, stop_after=1))
                        if notes and not self.is_leader:
                            self._try_lead(conn)
                        for note in notes:
                            for change in decode(note.payload):
                                self._dispatch(change)
            except Exception:  # noqa: BLE001 - the database went away: reconnect with backoff
                self._ready.clear()
                self.is_leader = False
                if self._stop.is_set():
                    return
                log.warning("change listener lost its connection; reconnecting in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        self._ready.clear()
        self.is_leader = False

    def _try_lead(self, conn: psycopg.Connection) -> None:
        key = zlib.crc32(self.channel.encode())  # one leader per channel
        self.is_leader = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])

    def _dispatch(self, change: ChangeEvent) -> None:
        try:
            self.handler(change)
        except Exception:
            log.exception("change handler failed")


def conninfo(engine: Engine) -> str:
    """A libpq URI for psycopg from the SQLAlchemy URL (same server, database, user and options)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_bus(engine: Engine, handler: Handler, kind: str = "auto") -> LocalBus | PgBus:
    """`auto`: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite; `local` or `pg` to choose."""
    if kind == "auto":
        kind = "pg" if engine.dialect.name == "postgresql" else "local"
    if kind == "pg":
        if engine.dialect.name != "postgresql":
            raise ValueError("the pg bus needs PostgreSQL")
        return PgBus(engine, handler)
    return LocalBus(handler)
