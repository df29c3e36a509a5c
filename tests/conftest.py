"""Shared fixtures. Every database test runs twice: on SQLite and on PostgreSQL (DESIGN.md: the same suite,
two databases). Each test runs inside a transaction that is rolled back, so tests never see each other."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

# A cheap password hash for the suite's thousands of signups (production keeps scrypt); set before the
# services are imported. Servers the e2e tests start inherit it.
os.environ.setdefault("PHR_PASSWORD_HASH_METHOD", "pbkdf2:sha256:1000")
# The suite's rest-hook receivers listen on 127.0.0.1; production refuses non-public endpoints (SSRF).
os.environ.setdefault("PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS", "1")

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from gateway import create_app
from gateway.db import make_engine
from gateway.migrate import upgrade

POSTGRES_URL = os.environ.get("PHR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DATABASES = [d.strip() for d in os.environ.get("PHR_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]
APP_ID = "test-app"
MASTER_KEY = "test-master-key"


def schema_url(base: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use their own schema (so unit and e2e runs never collide)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def fresh_database(kind: str, tmp_path_factory, name: str) -> str:
    """A migrated, empty database of that kind; returns its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'phr.sqlite3'}"
    else:
        admin = make_engine(POSTGRES_URL)
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {name}"))
        except Exception as e:  # pragma: no cover - depends on the machine
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {e}")
        finally:
            admin.dispose()
        url = schema_url(POSTGRES_URL, name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@contextlib.contextmanager
def app_on(url: str, tmp_path, **config: Any) -> Iterator[Any]:
    """The app on a database of its own (its real engine and pool, not the suite's rolled-back connection);
    its live hub stopped and its pool closed afterwards."""
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "i"), "APP_ID": APP_ID,
                      "MASTER_KEY": MASTER_KEY, "BASE_URL": "http://testserver", **config})
    try:
        yield app
    finally:
        app.extensions["phr_live"].stop()
        app.extensions["phr_db"][0].dispose()


def committed_postgres(tmp_path_factory, name: str):
    """A migrated PostgreSQL schema whose commits are real (not the rolled-back test connection), dropped
    afterwards; for tests about transactions and processes. Skips when PostgreSQL is not tested."""
    if "postgresql" not in DATABASES:
        pytest.skip("PostgreSQL is not among the test databases")
    url = fresh_database("postgresql", tmp_path_factory, name)
    yield url
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request, tmp_path_factory) -> str:
    return fresh_database(request.param, tmp_path_factory, f"unit_{os.getpid()}")


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine):
    """One connection per test with an outer transaction rolled back at the end."""
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def sent(engine):
    """Every SQL statement sent to the database during the test (clear() it to start counting), seen at the
    driver: some go around SQLAlchemy (prepared reads, COPY, a few rows' INSERT). On PostgreSQL every
    psycopg cursor of the process."""
    seen: list[str] = []
    if engine.dialect.name == "postgresql":
        import psycopg

        plain = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany", "copy")}

        def spy(original):
            def sent_by_cursor(self, statement, *args, **kwargs):
                seen.append(statement.decode() if isinstance(statement, bytes) else str(statement))
                return original(self, statement, *args, **kwargs)
            return sent_by_cursor

        for name, original in plain.items():
            setattr(psycopg.Cursor, name, spy(original))
        try:
            yield seen
        finally:
            for name, original in plain.items():
                setattr(psycopg.Cursor, name, original)
        return
    # SQLite: SQLAlchemy's event sees an executemany once (sqlite3's own trace would show each row), and the
    # prepared reads are the only statements that go around SQLAlchemy there.
    from sqlalchemy import event

    from gateway.services.prepared import Prepared

    def listen(_conn, _cursor, statement, *_a):
        seen.append(statement)

    plain_rows = Prepared.rows

    def rows(self, *args, **kwargs):
        seen.append(self.sql)
        return plain_rows(self, *args, **kwargs)

    event.listen(engine, "before_cursor_execute", listen)
    Prepared.rows = rows
    try:
        yield seen
    finally:
        Prepared.rows = plain_rows
        event.remove(engine, "before_cursor_execute", listen)


@contextlib.contextmanager
def sent_during(sent: list[str]) -> Iterator[list[str]]:
    """The statements of `sent` (the fixture) sent inside the with-block."""
    start = len(sent)
    window: list[str] = []
    yield window
    window.extend(sent[start:])


@pytest.fixture
def session_factory(connection):
    return sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")


@pytest.fixture
def db_session(session_factory):
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def app_config(database_url, engine, session_factory, tmp_path) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url, "ENGINE": engine, "SESSION_FACTORY": session_factory,
        "INSTANCE_PATH": str(tmp_path / "instance"), "APP_ID": APP_ID, "MASTER_KEY": MASTER_KEY,
        "BASE_URL": "http://testserver", "TESTING": True,
    }


@pytest.fixture
def app(app_config):
    return create_app(app_config)


class Parse:
    """A small REST client speaking the header form of the native API."""

    def __init__(self, client, token: str | None = None, master: bool = False):
        self.client = client
        self.token = token
        self.master = master

    def headers(self, extra: dict | None = None) -> dict[str, str]:
        h = {"X-Parse-Application-Id": APP_ID}
        if self.token:
            h["X-Parse-Session-Token"] = self.token
        if self.master:
            h["X-Parse-Master-Key"] = MASTER_KEY
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None, **kw):
        query = {k: (v if isinstance(v, str) else orjson.dumps(v).decode()) for k, v in (params or {}).items()}
        data = orjson.dumps(body) if body is not None else None
        return self.client.open(f"/parse{path}", method=method, data=data, query_string=query,
                                headers=self.headers(kw.pop("headers", None)), content_type="application/json", **kw)

    def get(self, path, params=None, **kw):
        return self.request("GET", path, params=params, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def as_user(self, token: str) -> "Parse":
        return Parse(self.client, token)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def parse(client) -> Parse:
    return Parse(client)


@pytest.fixture
def master(client) -> Parse:
    return Parse(client, master=True)


def pointer(cls: str, oid: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": oid}


def date(iso: str) -> dict[str, str]:
    return {"__type": "Date", "iso": iso if "T" in iso else f"{iso}T00:00:00.000Z"}


@pytest.fixture
def signup(parse):
    """signup('alice') -> (objectId, Parse client acting as alice)."""

    def make(username: str, password: str = "pw-123456", **extra):
        r = parse.post("/users", {"username": username, "password": password, **extra})
        assert r.status_code == 201, r.json
        return r.json["objectId"], parse.as_user(r.json["sessionToken"])

    return make


@pytest.fixture
def make_user(master, parse):
    """make_user('drwho', role='provider') -> (objectId, Parse client), made with the master key."""

    def make(username: str, role: str = "patient", password: str = "pw-123456"):
        r = master.post("/users", {"username": username, "password": password, "role": role})
        assert r.status_code == 201, r.json
        return r.json["objectId"], parse.as_user(r.json["sessionToken"])

    return make
