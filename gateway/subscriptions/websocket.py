"""The websocket channel of R4 Subscriptions (hl7.org/fhir/R4/subscription.html#channels): the client
opens a WebSocket with its credentials, sends `bind <subscription id>` for Subscriptions it owns whose
channel type is websocket; the server answers `bound <id>`, and sends `ping <id>` whenever a resource
matching that Subscription's criteria is created or updated, as far as the owner may see it then. The
client then searches for what changed. `unbind <id>` stops the pings of one Subscription.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.access import Principal
from gateway.errors import DomainError
from gateway.events import ChangeEvent
from gateway.subscriptions.matching import notifications
from gateway.subscriptions.service import SubscriptionService

log = logging.getLogger("gateway.subscriptions.websocket")


class FhirSocketClient:
    """One WebSocket. `principal_now(session)` gives the caller as they are now, or None when their
    credentials no longer hold (then nothing is sent)."""

    def __init__(self, hub, principal_now: Callable, send: Callable[[str], None],
                 close: Callable[[], None] | None = None):
        self.hub = hub
        self.principal_now = principal_now
        self._send = send
        self._close = close
        self._lock = threading.Lock()
        self.bound: set[str] = set()
        self.base_url = hub.config["BASE_URL"] + "/fhir"

    def send(self, text: str) -> None:
        with self._lock:
            self._send(text)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def handle(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        verb, _, rid = text.strip().partition(" ")
        rid = rid.strip()
        if verb == "bind" and rid:
            self.bind(rid)
        elif verb == "unbind" and rid:
            self.bound.discard(rid)
            self.send(f"unbound {rid}")
        else:
            self.send("error 400 expected 'bind <Subscription id>'")

    def bind(self, rid: str) -> None:
        with self.hub.session() as s:
            p: Principal | None = self.principal_now(s)
            if p is None or not p.authenticated:
                self.send(f"error 401 {rid} authentication is required")
                return
            try:
                sub = SubscriptionService(s, p, self.base_url).read(rid)
            except DomainError:
                self.send(f"error 404 {rid} no such Subscription")
                return
            if sub.channel_type != "websocket":
                self.send(f"error 400 {rid} is not a websocket Subscription")
                return
        self.bound.add(rid)
        self.send(f"bound {rid}")

    def deliver(self, change: ChangeEvent) -> None:
        bound = set(self.bound)
        if not bound:
            return
        with self.hub.session() as s:
            p = self.principal_now(s)
            if p is None:
                return
            pairs = notifications(s, change, "websocket", self.base_url, only=bound)
            # Only the owner's Subscriptions were bound, but ownership is checked again: a binding made
            # before a session ended must not outlive it.
            owned = {sub.id for sub, _ in pairs if _owns(s, p, sub.id, self.base_url)}
            s.commit()
        for rid in sorted(owned):
            self.send(f"ping {rid}")


def _owns(session, p: Principal, rid: str, base_url: str) -> bool:
    try:
        SubscriptionService(session, p, base_url).read(rid)
    except DomainError:
        return False
    return True
