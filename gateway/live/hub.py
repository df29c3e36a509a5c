"""The live hub of one app in one process: it connects committed changes, the bus, the WebSocket clients
(Parse LiveQuery, FHIR websocket subscriptions) and the rest-hook sender.

    commit in any process --bus (NOTIFY / in-process)--> Hub._on_bus in every process
                                                           |-> dispatcher thread -> each WebSocket client
                                                           |   here (each checks its subscriber's access)
                                                           '-> rest-hook sender thread (leader process only)

Threads start lazily: the PostgreSQL listener on the first request (so that this process hears the
others), the dispatcher when the first WebSocket client arrives, the rest-hook sender when a rest-hook
Subscription exists. Tests hand the app a session factory bound to one rolled-back connection: nothing
ever commits there, so the hub then uses the in-process bus and works in the calling thread ("inline"),
where that connection may be used.
"""
from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import exists, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway import events
from gateway.events import ChangeEvent
from gateway.extensions import open_session
from gateway.caller_cache import AUTH_CLASS, invalidate_in_process
from gateway.live.bus import LocalBus, PgBus, make_bus

log = logging.getLogger("gateway.live")
_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()
SUBSCRIPTION_CLASS = "Subscription"  # ChangeEvent.class_name of FHIR Subscription changes (no native class)


class Client(Protocol):
    """A connected WebSocket client: it hears every change and decides, under its own access, what to send."""

    def deliver(self, change: ChangeEvent) -> None: ...

    def close(self) -> None: ...


class Hub:
    def __init__(self, engine: Engine, factory: sessionmaker[Session], config: dict[str, Any]):
        self.engine = engine
        self.factory = factory
        self.config = config
        self.inline = bool(config.get("LIVE_INLINE", config.get("SESSION_FACTORY") is not None))
        kind = config.get("LIVE_BUS") or ("local" if config.get("SESSION_FACTORY") is not None else "auto")
        self.bus: LocalBus | PgBus = make_bus(engine, self._on_bus, kind)
        self.clients: set[Client] = set()
        self._lock = threading.RLock()
        self._unsubscribe = None
        self._queue: queue.Queue[ChangeEvent | None] = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._checked = False
        self.stopping = False
        self.resthooks_active = False
        from gateway.subscriptions.resthook import RestHookSender

        self.hooks = RestHookSender(self)
        _hubs.add(self)

    # ---- sessions for the hub's own work (never a request's session) ----

    @contextmanager
    def session(self) -> Iterator[Session]:
        s = open_session(self.factory, self.config)
        try:
            yield s
        finally:
            s.close()

    # ---- lifecycle ----

    def on_first_request(self) -> None:
        """Once per process: on PostgreSQL listen to the others; start the sender if rest-hooks exist."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            self._checked = True
            try:
                if self.bus.kind == "pg":
                    self._listen()
                self.refresh_resthooks()
            except Exception:
                log.exception("could not start the live hub")

    def _listen(self) -> None:
        """Hear changes: from PostgreSQL (every process's commits), or from this process's commits."""
        with self._lock:
            if self.bus.kind == "pg":
                self.bus.start()
            elif self._unsubscribe is None:
                self._unsubscribe = events.subscribe(self._on_commit, engine=self.engine)

    def attach(self, client: Client) -> None:
        """A WebSocket client arrived: make sure changes reach this process and are dispatched."""
        self._listen()
        with self._lock:
            self.clients.add(client)
            if not self.inline and (self._dispatcher is None or not self._dispatcher.is_alive()):
                self._dispatcher = threading.Thread(target=self._dispatch_loop, name="phr-live-dispatch",
                                                    daemon=True)
                self._dispatcher.start()

    def detach(self, client: Client) -> None:
        with self._lock:
            self.clients.discard(client)

    def refresh_resthooks(self) -> None:
        """Are there rest-hook Subscriptions to serve? Asked at start and whenever a Subscription changes."""
        from gateway.models import FhirSubscription as S

        with self.session() as s:
            active = bool(s.scalar(select(exists().where(
                S.channel_type == "rest-hook", S.deleted.is_(False), S.status.in_(("requested", "active", "error"))))))
        self.resthooks_active = active
        if active:
            self._listen()
            self.hooks.start()

    def subscriptions_changed(self) -> None:
        """A Subscription was written through this process's API (the others hear it from the bus)."""
        try:
            self.refresh_resthooks()
        except Exception:
            log.exception("could not refresh the rest-hook subscriptions")

    def stop(self) -> None:
        """Stop threads, close the WebSockets of this process (clients reconnect elsewhere)."""
        self.stopping = True
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            clients, self.clients = list(self.clients), set()
        for c in clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self.bus.stop()
        self._queue.put(None)
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join(5)
        self.hooks.stop()

    # ---- the flow of a change ----

    def _on_commit(self, change: ChangeEvent) -> None:
        """After a commit of this app in this process, on the local bus (on PostgreSQL the transaction
        itself sent the NOTIFY: gateway.live.bus)."""
        self.bus.publish(change)

    def caller_cache_epoch(self) -> int | None:
        """For gateway/caller_cache.py: on PostgreSQL, the listener connection invalidations arrive on, or
        None while it is not listening (nothing may be served from the cache then)."""
        if self.bus.kind != "pg":
            return 0
        return self.bus.epoch if self.bus.listening else None

    def _on_bus(self, change: ChangeEvent) -> None:
        """A change from any process (the listener thread; the writer's thread on the local bus)."""
        if change.class_name == AUTH_CLASS:  # a session, user, provider or token changed somewhere
            invalidate_in_process([change.object_id], self.engine)
            return
        if change.class_name == SUBSCRIPTION_CLASS:
            self.subscriptions_changed()
            return
        if self.resthooks_active and self.bus.is_leader:
            self.hooks.submit(change)  # one process (the leader) sends the rest-hook notifications
        if not self.clients:
            return
        if self.inline:
            self.dispatch(change)
        else:
            self._queue.put(change)

    def _dispatch_loop(self) -> None:
        while True:
            change = self._queue.get()
            if change is None or self.stopping:
                return
            self.dispatch(change)

    def dispatch(self, change: ChangeEvent) -> None:
        with self._lock:
            clients = list(self.clients)
        for client in clients:
            try:
                client.deliver(change)
            except Exception:
                log.exception("live delivery failed")


def shutdown_all() -> None:
    """Stop every hub of this process (gunicorn worker shutdown)."""
    for hub in list(_hubs):
        hub.stop()
