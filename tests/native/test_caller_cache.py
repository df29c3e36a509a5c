"""The per-process token -> principal cache (gateway/caller_cache.py): what it keeps, and that every change
to what an entry was made from drops it before the next request, on both databases. The cross-process case
(another web process's logout, through PostgreSQL NOTIFY) is in tests/live/test_caller_cache_bus.py."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway.access import Principal
from gateway.caller_cache import Caller, CallerCache
from gateway.db import new_object_id, utcnow
from gateway.models import Profile, Provider, User
from gateway.models.oauth import OAuthGrant
from gateway.models.user import Session as UserSession
from tests.native.conftest import ok, parse_error

KEY = ("session", "h1")


def caller(user_id: str = "u1", *, expires_in: float = 3600, tags: set[str] | None = None) -> Caller:
    return Caller(principal=Principal(user_id=user_id, role="patient"), user_id=user_id,
                  expires_at=utcnow() + timedelta(seconds=expires_in),
                  tags=frozenset(tags if tags is not None else {f"user:{user_id}"}))


# ---- the cache on its own ----

def test_an_entry_is_served_until_its_time_to_live_ends():
    cache = CallerCache(ttl=0.2)
    c = caller()
    cache.put(KEY, c, cache.generation())
    assert cache.get(KEY, utcnow()) is c
    time.sleep(0.25)
    assert cache.get(KEY, utcnow()) is None and len(cache) == 0


def test_an_entry_is_never_served_past_the_sessions_expiry():
    cache = CallerCache(ttl=60)
    cache.put(KEY, caller(expires_in=0.05), cache.generation())
    assert cache.get(KEY, utcnow()) is not None
    assert cache.get(KEY, utcnow() + timedelta(seconds=1)) is None


def test_a_lookup_that_overlapped_an_invalidation_is_not_stored():
    cache = CallerCache(ttl=60)
    generation = cache.generation()  # the request reads the database after this ...
    cache.invalidate(["user:someone-else"])  # ... while another request changes something
    cache.put(KEY, caller(), generation)
    assert cache.get(KEY, utcnow()) is None


def test_invalidation_drops_only_the_tagged_entries():
    cache = CallerCache(ttl=60)
    cache.put(("session", "a"), caller("u1"), cache.generation())
    cache.put(("session", "b"), caller("u2"), cache.generation())
    cache.put(("bearer", "c"), caller("u3", tags={"grant:g1", "user:u3"}), cache.generation())
    cache.invalidate(["user:u1", "grant:g1"])
    assert cache.get(("session", "a"), utcnow()) is None and cache.get(("bearer", "c"), utcnow()) is None
    assert cache.get(("session", "b"), utcnow()) is not None
    cache.invalidate(["*"])
    assert len(cache) == 0


def test_not_used_while_invalidations_cannot_arrive_nor_across_listener_reconnects():
    state = {"epoch": None}
    cache = CallerCache(ttl=60, epoch=lambda: state["epoch"])
    cache.put(KEY, caller(), cache.generation())
    assert len(cache) == 0  # not listening: nothing stored
    state["epoch"] = 1
    cache.put(KEY, caller(), cache.generation())
    assert cache.get(KEY, utcnow()) is not None
    state["epoch"] = None
    assert cache.get(KEY, utcnow()) is None  # listener down: not served
    state["epoch"] = 2  # reconnected: what was kept before may have missed an invalidation
    assert cache.get(KEY, utcnow()) is None


def test_bounded_in_size():
    cache = CallerCache(ttl=60, max_entries=3)
    for i in range(5):
        cache.put(("session", str(i)), caller(f"u{i}"), cache.generation())
    assert len(cache) == 3
    assert cache.get(("session", "0"), utcnow()) is None and cache.get(("session", "4"), utcnow()) is not None


def test_ttl_zero_turns_it_off():
    cache = CallerCache(ttl=0)
    cache.put(KEY, caller(), cache.generation())
    assert cache.get(KEY, utcnow()) is None


# ---- through the app: the lookup is saved, and every change is seen at once ----

@pytest.fixture
def statements(sent):
    return sent


def session_lookups(statements: list[str]) -> int:
    return sum("FROM user_session" in s for s in statements)


def test_a_token_is_looked_up_once_then_served_from_the_cache(signup, make_profile, statements):
    _, alice = signup("alice")
    pid = make_profile(alice)
    statements.clear()
    ok(alice.get(f"/classes/Profile/{pid}"))
    ok(alice.get(f"/classes/Profile/{pid}"))
    assert session_lookups(statements) <= 1
    statements.clear()
    ok(alice.get(f"/classes/Profile/{pid}"))
    assert session_lookups(statements) == 0


def test_logout_ends_the_token_at_once(signup, make_profile):
    _, alice = signup("alice")
    pid = make_profile(alice)
    ok(alice.get(f"/classes/Profile/{pid}"))  # cached
    ok(alice.post("/logout"))
    parse_error(alice.get(f"/classes/Profile/{pid}"), 209)


def test_deleting_the_session_ends_the_token_at_once(signup, make_profile):
    _, alice = signup("alice")
    pid = make_profile(alice)
    me = ok(alice.get("/sessions/me"))
    ok(alice.get(f"/classes/Profile/{pid}"))
    ok(alice.delete(f"/sessions/{me['objectId']}"))
    parse_error(alice.get(f"/classes/Profile/{pid}"), 209)


def test_a_new_password_ends_the_other_sessions_at_once(signup, parse, make_profile):
    uid, alice = signup("alice", password="pw-old-1")
    other = parse.as_user(ok(parse.post("/login", {"username": "alice", "password": "pw-old-1"}))["sessionToken"])
    pid = make_profile(alice)
    ok(other.get(f"/classes/Profile/{pid}"))
    ok(alice.put(f"/users/{uid}", {"password": "pw-new-2"}))
    parse_error(other.get(f"/classes/Profile/{pid}"), 209)
    ok(alice.get(f"/classes/Profile/{pid}"))  # the session that changed it goes on


def test_expiring_a_session_in_the_database_is_seen_at_once(signup, make_profile, db_session):
    uid, alice = signup("alice")
    pid = make_profile(alice)
    ok(alice.get(f"/classes/Profile/{pid}"))
    for s in db_session.scalars(select(UserSession).where(UserSession.user_id == uid)):
        s.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()
    parse_error(alice.get(f"/classes/Profile/{pid}"), 209)


def test_a_role_change_is_seen_at_once(signup, make_profile, db_session, app):
    uid, alice = signup("alice")
    make_profile(alice)
    cache = app.extensions["phr_callers"]
    ok(alice.get("/users/me"))
    assert any(c.user_id == uid for c, _, _ in cache._entries.values())
    db_session.get(User, uid).role = "provider"
    db_session.commit()
    assert not any(c.user_id == uid for c, _, _ in cache._entries.values())


@pytest.mark.parametrize("change", ["provider link", "new profile", "grant revoked in bulk"])
def test_every_change_to_what_an_entry_holds_drops_it(signup, make_profile, db_session, app, change):
    uid, alice = signup("alice")
    make_profile(alice)
    ok(alice.get("/users/me"))
    cache = app.extensions["phr_callers"]
    assert len(cache) >= 1
    now = utcnow()
    if change == "provider link":
        db_session.add(Provider(object_id=new_object_id(), created_at=now, updated_at=now, version=1,
                                name="Clinic", user_id=uid, acl={}))
    elif change == "new profile":
        db_session.add(Profile(object_id=new_object_id(), created_at=now, updated_at=now, version=1,
                               user_id=uid, full_name="Bob", acl={}))
    else:
        db_session.execute(update(OAuthGrant).where(OAuthGrant.user_id == uid).values(revoked_at=now))
    db_session.commit()
    assert not any(c.user_id == uid for c, _, _ in cache._entries.values())


@pytest.mark.parametrize("cls", ["Profile", "Provider"])
def test_a_profile_or_provider_written_by_the_services_drops_the_entry(signup, make_profile, master, app,
                                                                       cls):
    """The token's cached caller holds the profiles its user owns and the providers it acts for; a new one,
    a plain row that never passes through the Session's flush, must drop the entry as the flush did."""
    uid, alice = signup("alice")
    make_profile(alice)
    ok(alice.get("/users/me"))
    cache = app.extensions["phr_callers"]
    assert any(c.user_id == uid for c, _, _ in cache._entries.values())
    user = {"__type": "Pointer", "className": "_User", "objectId": uid}
    if cls == "Profile":
        ok(master.post("/classes/Profile", {"fullName": "Second Profile", "user": user}), 201)
    else:
        ok(master.post("/classes/Provider", {"name": "Clinic", "user": user}), 201)
    assert not any(c.user_id == uid for c, _, _ in cache._entries.values())


def test_a_rolled_back_change_is_harmless(signup, make_profile, db_session):
    uid, alice = signup("alice")
    pid = make_profile(alice)
    ok(alice.get(f"/classes/Profile/{pid}"))
    db_session.get(User, uid).role = "admin"
    db_session.flush()
    db_session.rollback()
    body = ok(alice.get("/users/me"))
    assert body["role"] == "patient"
