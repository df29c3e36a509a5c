"""The token cache across processes (gateway/caller_cache.py): two apps with their own engines, buses and
caches stand for two web processes on one PostgreSQL. A logout or a revoked grant in one reaches the
other's cache through NOTIFY; while a process is not listening it does not use its cache at all."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import event

from tests.conftest import Parse, committed_postgres
from tests.live.test_bus import make_app, wait_for
from tests.native.conftest import ok


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    yield from committed_postgres(tmp_path_factory, f"caller_bus_{os.getpid()}")


@pytest.fixture
def two_processes(pg_url, tmp_path):
    a, b = make_app(pg_url, tmp_path, "a"), make_app(pg_url, tmp_path, "b")
    yield a, b
    for app in (a, b):
        app.extensions["phr_live"].stop()
        app.extensions["phr_db"][0].dispose()


def session_lookups(app):
    seen: list[str] = []
    event.listen(app.extensions["phr_db"][0], "before_cursor_execute", lambda *a: seen.append(a[2]))
    return lambda: sum("FROM user_session" in s for s in seen)


def signed_up(app, name: str) -> tuple[Parse, str]:
    parse = Parse(app.test_client())
    user = ok(parse.post("/users", {"username": name, "password": "pw-123456"}), 201)
    alice = parse.as_user(user["sessionToken"])
    return alice, ok(alice.post("/classes/Profile", {"fullName": "Alice"}), 201)["objectId"]


def test_a_logout_in_one_process_ends_the_token_in_the_others_cache(two_processes):
    a, b = two_processes
    alice_a, pid = signed_up(a, "alice")
    alice_b = Parse(b.test_client(), alice_a.token)
    lookups = session_lookups(b)
    ok(alice_b.get(f"/classes/Profile/{pid}"))  # b starts listening on its first request
    assert wait_for(lambda: b.extensions["phr_live"].bus.listening)
    ok(alice_b.get(f"/classes/Profile/{pid}"))
    before = lookups()
    ok(alice_b.get(f"/classes/Profile/{pid}"))
    assert lookups() == before  # served from b's cache
    ok(alice_a.post("/logout"))
    # well within the cache's 5 s life: the NOTIFY of the logout's commit dropped b's entry
    assert wait_for(lambda: alice_b.get(f"/classes/Profile/{pid}").json.get("code") == 209, timeout=2.0)


def test_without_a_listener_every_request_looks_the_token_up(two_processes):
    a, b = two_processes
    alice_a, pid = signed_up(a, "bob")
    alice_b = Parse(b.test_client(), alice_a.token)
    ok(alice_b.get(f"/classes/Profile/{pid}"))
    hub = b.extensions["phr_live"]
    hub.bus.stop()
    assert not hub.bus.listening
    lookups = session_lookups(b)
    ok(alice_b.get(f"/classes/Profile/{pid}"))
    ok(alice_b.get(f"/classes/Profile/{pid}"))
    assert lookups() == 2
    ok(alice_a.post("/logout"))
    assert alice_b.get(f"/classes/Profile/{pid}").json["code"] == 209
