"""Sending rest-hook notifications (hl7.org/fhir/R4/subscription.html#channels), in a background thread,
never in the request that wrote.

For each committed change the process that made it finds the rest-hook Subscriptions it matches
(gateway.subscriptions.matching: the owner's access at notification time) and POSTs to each endpoint:
with no body when `channel.payload` is absent, else an id-only Bundle (fullUrl and request of the changed
resource, no content), with the `channel.header` headers. A failed attempt (network error or a non-2xx
answer) is recorded on the Subscription (status `error`, the error text) and retried with exponential
backoff; after SUBSCRIPTION_MAX_FAILURES failed attempts in a row the Subscription is turned `off`. A
success puts it back to `active`.

Retries wait in a schedule inside this thread (no database polling). The work is not durable: a process
that stops drops the notifications it had not sent yet.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from gateway.subscriptions.endpoints import endpoint_problem

from gateway.db import utcnow
from gateway.events import ChangeEvent
from gateway.models import FhirSubscription
from gateway.subscriptions.matching import notifications
from gateway.subscriptions.service import SubscriptionService

log = logging.getLogger("gateway.subscriptions.resthook")

DEFAULTS = {
    "SUBSCRIPTION_ATTEMPTS": 4,  # per notification: the first try and 3 retries
    "SUBSCRIPTION_RETRY_BASE_SECONDS": 1.0,  # waits of 1, 2, 4 s ...
    "SUBSCRIPTION_MAX_FAILURES": 10,  # failed attempts in a row before the Subscription is turned off
    "SUBSCRIPTION_TIMEOUT_SECONDS": 10.0,
}


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    subscription_id: str = field(compare=False)
    resource_type: str = field(compare=False)
    resource_id: str = field(compare=False)
    kind: str = field(compare=False)
    attempt: int = field(compare=False, default=1)


class RestHookSender:
    def __init__(self, hub, post: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic):
        self.hub = hub
        # Settings may come from the environment as text: each takes its default's type.
        self.config = {k: type(v)(hub.config.get(k, v)) for k, v in DEFAULTS.items()}
        self.base_url = hub.config["BASE_URL"] + "/fhir"
        self.http = requests.Session()
        self.post = post or self.http.post
        self.clock = clock
        self._changes: list[ChangeEvent] = []
        self._schedule: list[Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---- intake (the writer's thread, after commit) ----

    def submit(self, change: ChangeEvent) -> None:
        with self._cond:
            self._changes.append(change)
            self._cond.notify()

    # ---- the thread ----

    def start(self) -> None:
        if self.hub.inline:
            return  # tests drive the work with drain(), in their own thread
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="phr-resthook", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None
        self.http.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._changes and not self._due():
                    wait = self._schedule[0].due - self.clock() if self._schedule else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
            try:
                self.step()
            except Exception:
                log.exception("rest-hook work failed")

    def _due(self) -> bool:
        return bool(self._schedule) and self._schedule[0].due <= self.clock()

    def step(self) -> bool:
        """Do one piece of work (match one change, or one delivery attempt that is due); False when idle."""
        with self._cond:
            change = self._changes.pop(0) if self._changes else None
            delivery = heapq.heappop(self._schedule) if change is None and self._due() else None
        if change is not None:
            self._match(change)
            return True
        if delivery is not None:
            self._attempt(delivery)
            return True
        return False

    def drain(self, timeout: float = 10.0) -> None:
        """Work until nothing is pending or scheduled (tests; retries are waited for)."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            if self.step():
                continue
            with self._cond:
                if not self._changes and not self._schedule:
                    return
                wait = max(0.0, self._schedule[0].due - self.clock()) if self._schedule else 0.0
            time.sleep(min(wait, 0.05))
        raise TimeoutError("rest-hook work still pending")

    # ---- work ----

    def _match(self, change: ChangeEvent) -> None:
        try:
            with self.hub.session() as s:
                pairs = notifications(s, change, "rest-hook", self.base_url)
                found = [(sub.id, r.resource_type, r.id) for sub, r in pairs]
                s.commit()  # the audit of the owner's (matching) search
        except Exception:
            log.exception("rest-hook matching failed")
            return
        now = self.clock()
        with self._cond:
            for sid, rt, rid in found:
                heapq.heappush(self._schedule, Delivery(now, next(self._seq), sid, rt, rid, change.kind))
            self._cond.notify()

    def _attempt(self, d: Delivery) -> None:
        with self.hub.session() as s:
            sub = s.get(FhirSubscription, d.subscription_id)
            if sub is None or sub.deleted or sub.status == "off" or (sub.end is not None and sub.end <= utcnow()):
                return
            target, headers, body = sub.endpoint, _headers(sub), self._body(sub, d)
        error = endpoint_problem(target)
        try:
            if error is not None:
                raise _Refused(error)
            r = self.post(target, data=body, headers=headers, timeout=self.config["SUBSCRIPTION_TIMEOUT_SECONDS"],
                          allow_redirects=False)
            if not 200 <= r.status_code < 300:
                error = f"HTTP {r.status_code}"
        except _Refused:
            pass
        except requests.RequestException as e:
            error = type(e).__name__
        attempts = self.config["SUBSCRIPTION_ATTEMPTS"]
        with self.hub.session() as s:
            if error is None:
                SubscriptionService.delivered(s, d.subscription_id)
            else:
                text = (f"{utcnow().isoformat(timespec='seconds')}: rest-hook notification of "
                        f"{d.resource_type}/{d.resource_id} to {target} failed ({error}), attempt {d.attempt} of {attempts}")
                row = SubscriptionService.failed(s, d.subscription_id, text, self.config["SUBSCRIPTION_MAX_FAILURES"])
                if row is not None and row.status != "off" and d.attempt < attempts:
                    wait = self.config["SUBSCRIPTION_RETRY_BASE_SECONDS"] * 2 ** (d.attempt - 1)
                    with self._cond:
                        heapq.heappush(self._schedule, Delivery(self.clock() + wait, next(self._seq), d.subscription_id,
                                                                d.resource_type, d.resource_id, d.kind, d.attempt + 1))
                        self._cond.notify()
            s.commit()

    def _body(self, sub: FhirSubscription, d: Delivery) -> bytes | None:  # noqa: D102
        if not sub.payload:
            return None  # R4: no payload, the POST is the notification
        method, status = ("POST", "201 Created") if d.kind == "create" else ("PUT", "200 OK")
        return orjson.dumps({
            "resourceType": "Bundle", "type": "history", "timestamp": utcnow().isoformat(timespec="milliseconds"),
            "entry": [{"fullUrl": f"{self.base_url}/{d.resource_type}/{d.resource_id}",
                       "request": {"method": method, "url": f"{d.resource_type}/{d.resource_id}"},
                       "response": {"status": status}}],
        })


def _headers(sub: FhirSubscription) -> dict[str, str]:
    out = {"Content-Type": sub.payload} if sub.payload else {}
    for h in sub.headers or []:
        name, _, value = h.partition(":")
        out[name.strip()] = value.strip()
    return out


class _Refused(Exception):
    """The endpoint is no longer acceptable (it now resolves to a non-public address)."""
