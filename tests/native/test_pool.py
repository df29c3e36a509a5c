"""Pooled PostgreSQL connections are tested only after sitting idle (gateway/db.py _ping_when_idle): one
whose server process went away while it waited (a restart, an idle timeout) is replaced without the
request noticing, and a busy pool pays no round trip per checkout."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from gateway import db as db_mod
from gateway.db import make_engine
from tests.conftest import DATABASES, POSTGRES_URL

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


def test_a_connection_returned_just_now_is_not_pinged(engine, monkeypatch):
    """Under load nothing is tested per request: a connection broken while busy fails that one request,
    and SQLAlchemy then discards the pool, so the next request gets a new connection."""
    monkeypatch.setattr(db_mod, "IDLE_PING_SECONDS", 60.0)
    first = backend_pid(engine)
    terminate(first)
    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != first
