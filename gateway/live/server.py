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
  than once.
"""
from __future__ import annotations

import gc
import select
import signal
import threading

from gunicorn.workers.gthread import ThreadWorker

from gateway.live.hub import shutdown_all

# How long a thread waits on its connection for the next request before returning it to the poller.
KEEP_THREAD_MS = 5


class KeepAliveThreadWorker(ThreadWorker):
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
