"""End-to-end fixtures for the live features: the real server (`phr-gateway serve`, gunicorn gthread) on a
fresh database of each kind. On PostgreSQL it runs 2 workers, so a WebSocket and the write that should
reach it are often in different processes (the LISTEN/NOTIFY bus); on SQLite one worker, since the bus is
then in-process. Built on tests/e2e/conftest.py's ServerProcess (every process started is stopped)."""
from __future__ import annotations

import os

import pytest

from tests.conftest import DATABASES, fresh_database
from tests.e2e.conftest import (  # noqa: F401 - shared helpers of the e2e suite
    APP_ID,
    JS_KEY,
    MASTER_KEY,
    LiveServer,
    ServerProcess,
    _drop_schema,
    base_env,
    free_port,
    require_node,
    run_node,
)


@pytest.fixture(scope="session", params=DATABASES)
def ws_server(request, tmp_path_factory):
    require_node()
    kind = request.param
    schema = f"live_e2e_{os.getpid()}"
    database_url = fresh_database(kind, tmp_path_factory, schema if kind == "postgresql" else f"live_e2e_{kind}")
    instance = tmp_path_factory.mktemp(f"live_e2e_instance_{kind}")
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url, PHR_INSTANCE_PATH=str(instance), PHR_BASE_URL=f"http://127.0.0.1:{port}",
        PHR_APP_ID=APP_ID, PHR_JAVASCRIPT_KEY=JS_KEY, PHR_MASTER_KEY=MASTER_KEY,
        PHR_SUBSCRIPTION_ATTEMPTS="3", PHR_SUBSCRIPTION_RETRY_BASE_SECONDS="0.2",
        PHR_SUBSCRIPTION_TIMEOUT_SECONDS="3",
    )
    server = ServerProcess(env=env, port=port, log_path=instance / "server.log",
                           workers=2 if kind == "postgresql" else 1)
    try:
        server.start()
        yield LiveServer(url=server.url, port=port, kind=kind, database_url=database_url,
                         instance_path=str(instance), app_id=APP_ID, javascript_key=JS_KEY,
                         master_key=MASTER_KEY, env=env, process=server)
    finally:
        server.stop()
        if kind == "postgresql":
            _drop_schema(schema)
