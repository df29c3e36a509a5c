"""The export worker loop: claim a job, run it, repeat; clean up expired exports now and then.

`phr-gateway worker` runs this in its own process (production). On the embedded default (SQLite) the
`serve` command also runs it as a thread inside each web process; claims are atomic, so that is safe.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from gateway.services import bulk

log = logging.getLogger("gateway.jobs")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_once(factory: sessionmaker[Session], base: str, ident: str | None = None) -> bool:
    """Claim and run one job; True if there was one."""
    ident = ident or worker_id()
    job_id = bulk.claim_next(factory, ident)
    if job_id is None:
        return False
    bulk.run_job(factory, job_id, ident, base)
    return True


def loop(factory: sessionmaker[Session], base: str, *, stop: threading.Event | None = None,
         idle_sleep: float = 1.0) -> None:
    stop = stop or threading.Event()
    ident = worker_id()
    last_cleanup = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() - last_cleanup > 300:
                with factory() as s:
                    bulk.cleanup_expired(s)
                    s.commit()
                last_cleanup = time.monotonic()
            if not run_once(factory, base, ident):
                stop.wait(idle_sleep)
        except Exception as e:  # keep the worker alive; the job itself records its errors
            log.error("export worker error: %s", type(e).__name__)
            stop.wait(idle_sleep)


def start_thread(factory: sessionmaker[Session], base: str) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=loop, args=(factory, base), kwargs={"stop": stop}, name="export-worker",
                     daemon=True).start()
    return stop
