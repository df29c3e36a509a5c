"""The bus with real commits (a database of its own, not the rolled-back test connection): PostgreSQL
LISTEN/NOTIFY crosses connections (two apps stand for two processes), NOTIFY is sent only when the
transaction commits (never for a rolled-back SAVEPOINT), one listener leads; on SQLite the in-process bus
with the dispatcher thread."""
from __future__ import annotations

import dataclasses
import os
import threading
import time

import orjson
import psycopg
import pytest
from sqlalchemy import text

from gateway import create_app, events
from gateway.db import make_engine
from gateway.extensions import open_session
from gateway.live.bus import MAX_PAYLOAD, PgBus, conninfo, decode, encode, payloads
from tests.conftest import APP_ID, DATABASES, MASTER_KEY, POSTGRES_URL, Parse, fresh_database, pointer
from tests.live.conftest import LiveSocket
from tests.native.conftest import ok

WAIT = 5.0


@pytest.fixture(scope="module", params=DATABASES)
def committed_url(request, tmp_path_factory):
    name = f"live_bus_{os.getpid()}"
    url = fresh_database(request.param, tmp_path_factory, name)
    yield url
    if request.param == "postgresql":
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def make_app(url: str, tmp_path, name: str):
    return create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / name), "APP_ID": APP_ID,
                       "MASTER_KEY": MASTER_KEY, "BASE_URL": "http://testserver"})


def wait_for(predicate, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Collector:
    def __init__(self):
        self.got: list[events.ChangeEvent] = []
        self.cond = threading.Condition()

    def __call__(self, change):
        with self.cond:
            self.got.append(change)
            self.cond.notify_all()

    def ids(self):
        return [c.object_id for c in self.got]


def test_pg_notify_crosses_connections_only_for_what_commits(committed_url):
    if not committed_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    engine = make_engine(committed_url)
    heard_a, heard_b = Collector(), Collector()
    bus_a, bus_b = PgBus(engine, heard_a), PgBus(make_engine(committed_url), heard_b)
    try:
        bus_a.start()
        bus_b.start()
        assert bus_a.listening and bus_b.listening
        with open_session(make_sessionmaker(engine), {"BASE_URL": "http://x"}) as s:
            s.connection()
            events.publish(s, events.ChangeEvent("Allergy", "committed1", "p1", "create", 1))
            sp = s.begin_nested()
            events.publish(s, events.ChangeEvent("Allergy", "rolledback", "p1", "update", 2))
            sp.rollback()
            s.commit()
            s.connection()
            events.publish(s, events.ChangeEvent("Allergy", "never", "p1", "delete", 3))
            s.rollback()
        assert wait_for(lambda: heard_a.ids() == ["committed1"] and heard_b.ids() == ["committed1"])
        time.sleep(0.3)
        assert heard_a.ids() == ["committed1"] and heard_b.ids() == ["committed1"]
        assert heard_a.got[0] == events.ChangeEvent("Allergy", "committed1", "p1", "create", 1)
        # one leader among the listeners (it sends the rest-hook notifications)
        assert wait_for(lambda: [bus_a.is_leader, bus_b.is_leader].count(True) == 1)
    finally:
        bus_a.stop()
        bus_b.stop()
        engine.dispose()


def make_sessionmaker(engine):
    from gateway.db import make_sessionmaker as mk

    return mk(engine)


def test_a_write_in_one_process_reaches_a_live_query_client_of_another(committed_url, tmp_path):
    """On PostgreSQL two apps with their own engines and buses stand for two web processes; on SQLite one
    app, with its real dispatcher thread."""
    writer_app = make_app(committed_url, tmp_path, "writer")
    reader_app = make_app(committed_url, tmp_path, "reader") if committed_url.startswith("postgresql") else writer_app
    hub = reader_app.extensions["phr_live"]
    try:
        parse = Parse(writer_app.test_client())
        user = ok(parse.post("/users", {"username": f"u{time.monotonic_ns()}", "password": "pw-123456"}), 201)
        alice = parse.as_user(user["sessionToken"])
        pid = ok(alice.post("/classes/Profile", {"fullName": "Alice"}), 201)["objectId"]
        ws = LiveSocket(hub)
        assert not hub.inline and hub.bus.kind == ("pg" if committed_url.startswith("postgresql") else "local")
        ws.connect(user["sessionToken"])
        ws.subscribe(1, "Allergy", {"profile": pointer("Profile", pid)})
        started = time.monotonic()
        oid = ok(alice.post("/classes/Allergy", {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
                                                 "profile": pointer("Profile", pid)}), 201)["objectId"]
        assert wait_for(lambda: any(m.get("op") == "create" for m in ws.received)), ws.received
        assert time.monotonic() - started < 1.0
        (event,) = ws.events()
        assert event["object"]["objectId"] == oid and event["object"]["substance"] == "Peanut"
        assert orjson.dumps(event)  # plain JSON, as it goes on the wire
    finally:
        writer_app.extensions["phr_live"].stop()
        hub.stop()
        for a in {writer_app, reader_app}:
            a.extensions["phr_db"][0].dispose()


def test_the_changes_of_one_transaction_arrive_in_the_order_they_were_made(committed_url):
    if not committed_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    engine = make_engine(committed_url)
    heard = Collector()
    bus = PgBus(engine, heard)
    raw = psycopg.connect(conninfo(engine), autocommit=True)
    try:
        bus.start()
        raw.execute(f'LISTEN "{bus.channel}"')
        ids = [f"o{i:03d}" for i in range(300)]
        with open_session(make_sessionmaker(engine), {"BASE_URL": "http://x"}) as s:
            s.connection()
            for oid in ids:
                events.publish(s, events.ChangeEvent("Observation", oid, "p1", "create", 1))
            s.commit()
        assert wait_for(lambda: len(heard.got) == len(ids))
        assert heard.ids() == ids
        # a few notifications carry them all (each one wakes every listening process)
        notes = list(raw.notifies(timeout=0.5))
        assert 1 < len(notes) <= 300 * 100 // MAX_PAYLOAD + 1
        assert [c.object_id for n in notes for c in decode(n.payload)] == ids
    finally:
        raw.close()
        bus.stop()
        engine.dispose()


def test_payloads_stay_under_postgresqls_limit_and_keep_the_order():
    changes = [events.ChangeEvent("LabResult", f"id{i:07d}", f"p{i % 7}", "create", 1 + i % 3)
               for i in range(1000)]
    parts = payloads(changes)
    assert len(parts) > 1 and all(len(p.encode()) <= MAX_PAYLOAD for p in parts)
    assert [c for p in parts for c in decode(p)] == changes
    assert payloads(changes[:1]) == [f"[{encode(changes[0])}]"]


def test_a_single_change_and_malformed_items_decode_as_before():
    one = events.ChangeEvent("_Session", "tag", None, "auth", 0)
    assert decode(encode(one)) == [one]  # what caller_cache sends, and older processes
    assert decode("not json") == []
    assert decode(f'[{encode(one)}, {{"class_name": "x"}}, 3]') == [one]


def test_a_change_as_a_dict_has_every_field():
    """to_dict is written by hand: it must name every field of the event, so decode rebuilds it whole."""
    change = events.ChangeEvent("Allergy", "a1", "p1", "update", 4)
    assert change.to_dict() == dataclasses.asdict(change)
