"""Who a token belongs to, remembered per process for a few seconds.

Every authenticated request starts by turning its token into a Principal: the session (or SMART access
token and its grant), the user, the providers the user acts for and the profiles it owns. That lookup was
half the server CPU of a native GET (docs/PERFORMANCE.md). Parse Server keeps session -> user in memory
for 5 s and lets a logged-out token work on other processes until then; this cache keeps the speed without
that window:

- every change to what an entry was made from (a session deleted or changed, a user changed or deleted, a
  provider link, a profile made or removed, a SMART token, grant or client changed) is detected on the
  SQLAlchemy Session (`after_flush`, and ORM bulk UPDATE/DELETE statements) and drops the matching entries:
  in this process when the transaction commits, in every other process through the change bus (a NOTIFY
  sent inside the writing transaction, so PostgreSQL delivers it exactly at commit);
- on PostgreSQL the cache is used only while this process's bus listener is connected, and entries made
  before a reconnect are never used again (an invalidation may have been missed while it was away);
- a lookup that overlapped an invalidation is not stored (generation counter), so an entry can never hold
  a state older than the last invalidation this process heard;
- entries also live at most CALLER_CACHE_SECONDS (default 5, as Parse; 0 turns the cache off) and never
  past the session's or token's expiry, checked on every hit.

Bounded: at most CALLER_CACHE_ENTRIES entries (least recently stored dropped first). Entries hold ids
and roles, no health data.
"""
from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway import access
from gateway.access import Principal

#: ChangeEvent.class_name of an invalidation on the change bus; its object_id is the tag.
AUTH_CLASS = "@auth"
ALL = "*"
_TAGS = "phr_caller_tags"


@dataclass(frozen=True)
class Caller:
    """What one token resolves to."""

    principal: Principal
    user_id: str | None
    #: The session's or access token's end; a hit after it is a miss.
    expires_at: datetime | None
    #: Profiles the user owned when the entry was made (audit.record_reads' "is this the owner").
    owned_profiles: frozenset[str] = frozenset()
    #: Those of them not deleted (the write checks' "does the caller own this profile").
    live_profiles: frozenset[str] = frozenset()
    #: Bearer tokens: the FHIR base the grant was issued for.
    audience: str | None = None
    #: What invalidates the entry: "user:<id>", "grant:<id>", "client:<id>".
    tags: frozenset[str] = frozenset()


class CallerCache:
    """One per app. `epoch()` says whether the cache may be used now (None: no) and which listener
    connection its invalidations come through; entries of another epoch are misses."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000, epoch: Callable[[], Any] = lambda: 0,
                 engine: Engine | None = None):
        self.ttl = ttl
        #: Commits through this engine invalidate in process; others arrive through the bus.
        self.engine = engine
        self.max_entries = max_entries
        self.epoch = epoch
        self._entries: OrderedDict[tuple[str, str], tuple[Caller, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def generation(self) -> int:
        """Read before the database lookup; hand back to `put`."""
        return self._generation

    def get(self, key: tuple[str, str], now: datetime) -> Caller | None:
        if not self.enabled:
            return None
        epoch = self.epoch()
        if epoch is None:
            return None
        with self._lock:
            found = self._entries.get(key)
        if found is None:
            return None
        caller, stored, at_epoch = found
        if (at_epoch != epoch or time.monotonic() - stored > self.ttl
                or (caller.expires_at is not None and caller.expires_at <= now)):
            with self._lock:
                if self._entries.get(key) is found:
                    del self._entries[key]
            return None
        return caller

    def put(self, key: tuple[str, str], caller: Caller, generation: int) -> None:
        if not self.enabled:
            return
        epoch = self.epoch()
        if epoch is None:
            return
        with self._lock:
            if generation != self._generation:  # something changed while we looked it up
                return
            self._entries[key] = (caller, time.monotonic(), epoch)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, tags: Iterable[str]) -> None:
        tags = set(tags)
        with self._lock:
            self._generation += 1
            if ALL in tags:
                self._entries.clear()
                return
            for key in [k for k, (c, _, _) in self._entries.items() if c.tags & tags]:
                del self._entries[key]

    def clear(self) -> None:
        self.invalidate([ALL])

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakSet[CallerCache] = weakref.WeakSet()


def remembered(cache: CallerCache | None, key: tuple[str, str], now: datetime, load: Callable[[], Caller]) -> Caller:
    """The cached Caller for `key`, or `load()` (which raises when the token is not valid) stored for the
    next request unless something was invalidated while it ran."""
    caller = cache.get(key, now) if cache is not None else None
    if caller is None:
        generation = cache.generation() if cache is not None else 0
        caller = load()
        if cache is not None:
            cache.put(key, caller, generation)
    return caller


def invalidate_in_process(tags: Iterable[str], engine: Engine | None) -> None:
    """The caches of this process that serve this engine (several apps share a process in tests; each
    stands for a process of its own and hears the others through its bus)."""
    tags = list(tags)
    for cache in list(_caches):
        if cache.engine is None or engine is None or cache.engine is engine:
            cache.invalidate(tags)


def _engine_of(session: Session) -> Engine | None:
    bind = session.get_bind()
    return getattr(bind, "engine", bind)


# ---- what a write invalidates ----

def _tags_of(obj: Any, deleted: bool) -> set[str]:
    from gateway.models import Profile, Provider, User
    from gateway.models.oauth import OAuthClient, OAuthGrant, OAuthToken
    from gateway.models.user import Session as UserSession

    if isinstance(obj, (UserSession, Profile)):
        return {f"user:{v}" for v in _values(obj, "user_id") if v}
    if isinstance(obj, User):
        return {f"user:{obj.object_id}"}
    if isinstance(obj, Provider):
        # A provider link changes who a user (and a back-end client) acts for.
        return {f"user:{v}" for v in _values(obj, "user_id") if v} | {f"provider:{obj.object_id}"}
    if isinstance(obj, (OAuthToken, OAuthGrant)):
        return {f"grant:{obj.grant_id}"}
    if isinstance(obj, OAuthClient):
        return {f"client:{obj.client_id}"}
    return set()


def _values(obj: Any, attr: str) -> list[Any]:
    """The attribute's value now and before this flush (a moved profile invalidates both users)."""
    hist = inspect(obj).attrs[attr].history
    return [getattr(obj, attr), *hist.deleted]


@functools.cache
def _watched_tables() -> frozenset[str]:
    from gateway.models import Profile, Provider, User
    from gateway.models.oauth import OAuthClient, OAuthGrant, OAuthToken
    from gateway.models.user import Session as UserSession

    return frozenset(m.__table__.name for m in (UserSession, User, Profile, Provider, OAuthToken, OAuthGrant,
                                                OAuthClient))


def _remember(session: Session, tags: set[str], *, changed: bool = True) -> None:
    """`changed`: existing rows were updated or deleted (a new row changes nothing the request knew)."""
    if not tags:
        return
    if changed:
        access.forget_ownership(session)
    session.info.setdefault(_TAGS, set()).update(tags)
    _notify_others(session, tags)


def _notify_others(session: Session, tags: set[str]) -> None:
    """On PostgreSQL, tell the other processes inside this transaction: delivered at commit, never for a
    rolled-back one (gateway/live/bus.py)."""
    engine = _engine_of(session)
    if engine.dialect.name != "postgresql":
        return
    from gateway.events import ChangeEvent
    from gateway.live.bus import channel_for, encode

    conn = session.connection()
    channel = channel_for(engine, conn)
    for tag in sorted(tags):
        conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                     {"channel": channel, "payload": encode(ChangeEvent(AUTH_CLASS, tag, None, "auth", 0))})


def remember_new(session: Session, obj: Any) -> None:
    """A new object written as a plain row, outside the Session's flush (services/write_buffer.py
    `add_new`): what `_after_flush` would have noted for it (a new profile or provider drops its user's
    entry at commit). Called for every record a write adds: most belong to no watched table."""
    if obj.__table__.name in _watched_tables() and not _is_user_session(obj):
        _remember(session, _tags_of(obj, False), changed=False)


@sa_event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx) -> None:
    added: set[str] = set()
    for obj in session.new:
        if not _is_user_session(obj):  # a new login changes no cached entry
            added |= _tags_of(obj, False)
    changed: set[str] = set()
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            changed |= _tags_of(obj, False)
    for obj in session.deleted:
        changed |= _tags_of(obj, True)
    _remember(session, added | changed, changed=bool(changed))


def _is_user_session(obj: Any) -> bool:
    from gateway.models.user import Session as UserSession

    return isinstance(obj, UserSession)


@sa_event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state) -> None:
    """An UPDATE or DELETE statement on a watched table (password change ends sessions, grant revocation):
    drop everything; these are rare."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) in _watched_tables():
        _remember(state.session, {ALL})


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    tags = session.info.pop(_TAGS, None)
    if tags:
        invalidate_in_process(tags, _engine_of(session))


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    # Nothing changed, but dropping entries is always safe: a rolled-back SAVEPOINT keeps the outer tags.
    tags = session.info.get(_TAGS)
    if tags and not session.in_transaction():
        session.info.pop(_TAGS, None)
        invalidate_in_process(tags, _engine_of(session))
