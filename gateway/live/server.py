"""gunicorn integration, once per worker after it loaded the app.

- A WebSocket holds its gthread worker thread for as long as it is open, and a stopping worker waits for
  its open connections (graceful_timeout): so on SIGTERM/SIGINT/SIGQUIT we close this worker's sockets at
  once (clients get 1001 "going away" and reconnect to another worker).
- The ~140,000 objects of the loaded app (modules, mappers, schemas) are moved out of the garbage
  collector's view (gc.freeze): a full collection scanned them all, 43 ms during which every request of the
  worker waits (0.05 ms once frozen; docs/PERFORMANCE.md).
"""
from __future__ import annotations

import gc
import signal
import threading

from gateway.live.hub import shutdown_all


def post_worker_init(worker) -> None:
    gc.collect()
    gc.freeze()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous):
            threading.Thread(target=shutdown_all, name="phr-live-shutdown", daemon=True).start()
            previous(signum, frame)

        signal.signal(sig, handler)
