"""gunicorn integration, once per worker after it loaded the app.

- A WebSocket holds its gthread worker thread for as long as it is open, and a stopping worker waits for
  its open connections (graceful_timeout): so on SIGTERM/SIGINT/SIGQUIT we close this worker's sockets at
  once (clients get 1001 "going away" and reconnect to another worker).
- FHIR validation's models are all loaded before the worker serves (fhir.resources imports them on first
  use: the first Bundles after a start spent ~20 % of their time importing).
- The ~140,000 objects of the loaded app (modules, mappers, schemas) are moved out of the garbage
  collector's view (gc.freeze): a full collection scanned them all, 43 ms during which every request of the
  worker waits (0.05 ms once frozen; docs/PERFORMANCE.md).
- `KeepAliveThreadWorker`: gunicorn's gthread worker hands every keep-alive request back and forth between
  its poller thread and a pool thread (unregister, queue, wake a thread, answer, pipe back, register again).
  While a worker has no more connections than threads, a connection keeps its thread for a few
  milliseconds after an answer and the thread serves its next request directly: a trivial app went from
  12,600 to 17,000 requests/s on two cores. Past that many connections every connection goes back to the
  poller after each answer, as in plain gthread, so no connection waits behind another's idle time more
  than once. And a new connection goes to a worker holding fewest (gateway/live/balance.py): the workers
  share one listening socket, and one that holds more than another leaves it to that one for
  DECLINE_MS (then takes it itself, should the other not have).
"""
from __future__ import annotations

import gc
import select
import signal
import threading
import time

from gunicorn.workers.gthread import ThreadWorker

from gateway.live import balance
from gateway.live.hub import shutdown_all

# How long a thread waits on its connection for the next request before returning it to the poller.
KEEP_THREAD_MS = 5


# How long a worker holding more connections than another leaves a new connection to that one.
DECLINE_MS = 20


class KeepAliveThreadWorker(ThreadWorker):
    _share: balance.Share | None = None
    #: While accepting is left to a less busy worker, until when (monotonic).
    _declined_until = 0.0
    #: How many connections the other workers held when this one last left one to them (None: it took the
    #: last one itself). Still as many after the pause: none of them took it, so this worker does.
    _declined_seen: int | None = None

    def init_process(self):
        self._share = balance.join(self.pid)
        super().init_process()

    def run(self):
        try:
            super().run()
        finally:
            if self._share is not None:
                self._share.leave()

    def notify(self):
        super().notify()  # once per turn of the loop
        if self._share is not None:
            self._share.publish(self.nr_conns)

    def accept(self, listener):
        others = self._share.elsewhere() if self._share is not None else None
        if others is not None and others[0] < self.nr_conns and others[1] != self._declined_seen:
            self._declined_until, self._declined_seen = time.monotonic() + DECLINE_MS / 1000, others[1]
            self.set_accept_enabled(False)
            return
        self._declined_seen = None
        super().accept(listener)
        if self._share is not None:
            self._share.publish(self.nr_conns)

    def set_accept_enabled(self, enabled):
        if enabled and time.monotonic() < self._declined_until:
            return  # still left to a less busy worker
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout):
        pause = self._declined_until - time.monotonic()
        if pause > 0:
            timeout = min(timeout, pause)  # to take up accepting again when the pause ends
        super().wait_for_and_dispatch_events(timeout)

    def handle(self, conn):
        keep = super().handle(conn)
        while keep is True and self._next_request_comes(conn):
            keep = super().handle(conn)
        return keep

    def _next_request_comes(self, conn) -> bool:
        """Whether the connection's next request arrived within KEEP_THREAD_MS, if the worker has a thread for
        each of its connections. One poll for the whole time: waking every millisecond to look again made the
        waiting threads contend for the GIL (-17 % requests/s), so a connection accepted meanwhile may wait
        for one KEEP_THREAD_MS at most, once."""
        if conn.parser.unreader.buf.getvalue():
            return True  # already read along with the last one
        if not (self.alive and self.nr_conns <= self.cfg.threads):
            return False
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(KEEP_THREAD_MS))


def ready_to_serve() -> None:
    """What a worker does once its app is loaded, before its first request (also for in-process benchmarks,
    so that they measure what a worker does): load FHIR write validation's models, then freeze."""
    from gateway.fhir.params import RESOURCE_TYPES
    from gateway.fhir.validation import warm_up

    warm_up(RESOURCE_TYPES)
    gc.collect()
    gc.freeze()


def post_worker_init(worker) -> None:
    ready_to_serve()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous):
            threading.Thread(target=shutdown_all, name="phr-live-shutdown", daemon=True).start()
            previous(signum, frame)

        signal.signal(sig, handler)
