"""gunicorn integration. A WebSocket holds its gthread worker thread for as long as it is open, and a
stopping worker waits for its open connections (graceful_timeout): so on SIGTERM/SIGINT/SIGQUIT we close
this worker's sockets at once (clients get 1001 "going away" and reconnect to another worker)."""
from __future__ import annotations

import signal
import threading

from gateway.live.hub import shutdown_all


def post_worker_init(worker) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous):
            threading.Thread(target=shutdown_all, name="phr-live-shutdown", daemon=True).start()
            previous(signum, frame)

        signal.signal(sig, handler)
