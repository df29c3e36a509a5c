"""What each gunicorn worker does once it has loaded the app (gateway/live/server.py)."""
from __future__ import annotations

import gc
import signal

from gateway.live.server import post_worker_init


def test_the_loaded_app_is_kept_out_of_full_collections(monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep the test process's own handlers
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        post_worker_init(object())
        assert gc.get_freeze_count() > 10_000  # the interpreter, pytest and the app's modules
    finally:
        gc.unfreeze()
