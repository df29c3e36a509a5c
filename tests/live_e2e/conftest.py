"""End-to-end fixtures for the live features: the real server (`phr-gateway serve`, gunicorn gthread) on a
fresh database of each kind. On PostgreSQL it runs 2 workers, so a WebSocket and the write that should
reach it are often in different processes (the LISTEN/NOTIFY bus); on SQLite one worker, since the bus is
then in-process. Built on tests/e2e/conftest.py's ServerProcess (every process started is stopped)."""
from __future__ import annotations

import pytest

from tests.conftest import DATABASES
from tests.e2e.conftest import (  # noqa: F401 - shared helpers of the e2e suite
    APP_ID,
    JS_KEY,
    MASTER_KEY,
    LiveServer,
    ServerProcess,
    require_node,
    run_node,
    running_server,
)


@pytest.fixture(scope="session", params=DATABASES)
def ws_server(request, tmp_path_factory):
    require_node()
    kind = request.param
    with running_server(kind, tmp_path_factory, "live_e2e", workers=2 if kind == "postgresql" else 1,
                        PHR_SUBSCRIPTION_ATTEMPTS="3", PHR_SUBSCRIPTION_RETRY_BASE_SECONDS="0.2",
                        PHR_SUBSCRIPTION_TIMEOUT_SECONDS="3") as server:
        yield server
