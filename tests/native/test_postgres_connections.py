"""PostgreSQL connections (gateway/pg.py): pooled ones are tested only after sitting idle (one whose server
process went away while it waited is replaced without the request noticing; a busy pool pays no round trip
per checkout), and a request opens a transaction only when it writes, all its writes inside it."""
from __future__ import annotations

import os
import time

import pytest
from psycopg._connection_base import BaseConnection
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gateway import create_app
from gateway import pg as db_mod
from gateway.db import make_engine
from gateway.pg import IDLE
from tests.conftest import DATABASES, POSTGRES_URL, Parse, app_on, committed_postgres, pointer
from tests.native.conftest import ok

pytestmark = pytest.mark.skipif("postgresql" not in DATABASES, reason="PostgreSQL is not among the test databases")


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def terminate(pid: int) -> None:
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()


@pytest.fixture
def engine():
    eng = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    yield eng
    eng.dispose()


def test_an_idle_connection_whose_server_went_away_is_replaced(engine, monkeypatch):
    monkeypatch.setattr(db_mod, "IDLE_PING_SECONDS", 0.0)
    first = backend_pid(engine)
    terminate(first)
    second = backend_pid(engine)  # no error: the checkout test found it dead and made a new one
    assert second != first


def test_sessions_run_in_utc_whatever_the_servers_time_zone():
    """UTCDateTime columns take the driver's datetimes as they come on PostgreSQL, which is right only if
    every connection's session is in UTC."""
    from datetime import datetime, timezone

    from gateway.db import UTCDateTime

    eng = make_engine(POSTGRES_URL, connect_args={"options": "-c TimeZone=America/Sao_Paulo"})
    try:
        with eng.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
            got = conn.execute(text("SELECT TIMESTAMPTZ '2026-01-02 01:04:05.678-02'").columns(
                t=UTCDateTime)).scalar()
    finally:
        eng.dispose()
    assert got == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert got.tzinfo is timezone.utc
    assert got.isoformat() == "2026-01-02T03:04:05.678000+00:00"


def test_a_connection_returned_just_now_is_not_pinged(engine, monkeypatch):
    """Under load nothing is tested per request: a connection broken while busy fails that one request,
    and SQLAlchemy then discards the pool, so the next request gets a new connection."""
    monkeypatch.setattr(db_mod, "IDLE_PING_SECONDS", 60.0)
    first = backend_pid(engine)
    terminate(first)
    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != first


# ---- BEGIN only when a request writes (gateway/pg.py) ----

@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    yield from committed_postgres(tmp_path_factory, f"deferred_begin_{os.getpid()}")


@pytest.fixture
def app(pg_url, tmp_path):
    with app_on(pg_url, tmp_path) as app:
        yield app


@pytest.fixture
def in_transaction(app, monkeypatch):
    """Per statement the request sends: was a transaction open on the server when it ran? Seen at the
    driver: some statements go around SQLAlchemy (prepared reads, a few rows' INSERT, COPY)."""
    import psycopg

    seen: list[tuple[str, bool]] = []
    for name in ("execute", "executemany", "copy"):
        def spy(self, statement, *args, __plain=getattr(psycopg.Cursor, name), **kwargs):
            seen.append((str(statement).split()[0].upper(), self.connection.info.transaction_status != IDLE))
            return __plain(self, statement, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, spy)
    return seen


def alice(app) -> tuple[Parse, str]:
    parse = Parse(app.test_client())
    user = ok(parse.post("/users", {"username": f"a{time.monotonic_ns()}", "password": "pw-123456"}), 201)
    a = parse.as_user(user["sessionToken"])
    return a, ok(a.post("/classes/Profile", {"fullName": "Alice"}), 201)["objectId"]


@pytest.fixture
def commands(monkeypatch):
    """The transaction commands psycopg sends on its own (BEGIN before a statement, COMMIT, ROLLBACK)."""
    sent: list[bytes] = []
    original = BaseConnection._exec_command

    def spy(self, command, *args, **kwargs):
        if isinstance(command, bytes):
            sent.append(command)
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(BaseConnection, "_exec_command", spy)
    return sent


def test_a_read_only_request_opens_no_transaction(app, in_transaction, commands):
    a, pid = alice(app)
    ok(a.get(f"/classes/Profile/{pid}"))
    in_transaction.clear()
    commands.clear()
    ok(a.get(f"/classes/Profile/{pid}"))
    ok(a.get("/classes/Allergy", params={"where": {"profile": pointer("Profile", pid)}}))
    assert in_transaction and all(not open_ for _, open_ in in_transaction), in_transaction
    assert "BEGIN" not in [kind for kind, _ in in_transaction], in_transaction
    assert not [c for c in commands if c.split()[0] in (b"BEGIN", b"COMMIT", b"ROLLBACK")], commands


def test_every_write_of_a_request_runs_in_one_transaction(app, in_transaction):
    a, pid = alice(app)
    in_transaction.clear()
    ok(a.post("/classes/Allergy", {"substance": "Peanut", "profile": pointer("Profile", pid)}), 201)
    writes = [(kind, open_) for kind, open_ in in_transaction if kind in ("INSERT", "UPDATE", "DELETE")]
    assert len(writes) >= 3 and all(open_ for _, open_ in writes), in_transaction


def test_rows_sent_by_copy_are_inside_the_transaction_too(app, monkeypatch):
    import psycopg

    states = []
    original = psycopg.Cursor.copy

    def spy(self, *args, **kwargs):
        states.append(self.connection.info.transaction_status)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    a, pid = alice(app)
    states.clear()
    ok(a.post("/classes/Allergy", {"substance": "Peanut", "profile": pointer("Profile", pid)}), 201)
    assert states and IDLE not in states, states


def test_a_failed_transactional_batch_leaves_nothing(app):
    a, pid = alice(app)
    body = {"transaction": True, "requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": {"substance": "Egg", "profile": pointer("Profile", pid)}},
        {"method": "POST", "path": "/parse/classes/Allergy", "body": {"substance": 5, "profile": pointer("Profile", pid)}},
    ]}
    assert a.post("/batch", body).status_code == 400
    assert ok(a.get("/classes/Allergy", params={"where": {"profile": pointer("Profile", pid)}, "count": 1}))["count"] == 0
    with app.extensions["phr_db"][0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM allergy WHERE profile_id = :p"), {"p": pid}).scalar() == 0


def test_connections_go_back_to_the_pool_as_they_came(app):
    a, pid = alice(app)
    ok(a.get(f"/classes/Profile/{pid}"))
    with app.extensions["phr_db"][0].connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi.autocommit is False
        conn.execute(text("SELECT 1"))
        assert dbapi.info.transaction_status != IDLE  # psycopg's implicit BEGIN, as before


def test_the_pool_keeps_as_many_connections_as_configured(pg_url, tmp_path):
    app = create_app({"DATABASE_URL": pg_url, "INSTANCE_PATH": str(tmp_path / "i"), "DB_POOL_SIZE": 12})
    try:
        assert app.extensions["phr_db"][0].pool.size() == 12
    finally:
        app.extensions["phr_live"].stop()
        app.extensions["phr_db"][0].dispose()
