"""gunicorn's side of the metrics: every worker writes its own values into files in one folder
(prometheus_client's multiprocess mode), which any worker answering /metrics adds up.

The folder is PROMETHEUS_MULTIPROC_DIR when the operator names one (emptied at start: values left by an
earlier run would be counted again), else a fresh temporary folder removed when `serve` stops. Either way
it is chosen before prometheus_client is first imported, which is when it decides on the mode.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(token: str | None) -> str | None:
    """Called by `serve` before the app is made; returns the folder, or None when metrics are off."""
    if not token:
        return None
    given = os.environ.get(ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="phr-metrics-"))
        os.environ[ENV] = str(folder)
        owner = os.getpid()

        def remove() -> None:
            if os.getpid() == owner:  # not in a worker: they fork from this process and inherit atexit
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported already (by a plugin): choose the mode again, before any metric exists
        from gateway.ops import metrics

        assert metrics._metrics is None, "metrics were made before the multiprocess folder was chosen"
        values.ValueClass = values.get_value_class()
    return str(folder)


def child_exit(_server, worker) -> None:
    """gunicorn hook: a worker ended; its gauges of live things (open sockets, pool) no longer count."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
