"""Live features under the Flask test client: the hub runs in-process and inline (the test's one
connection is used only from the test's thread), on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from gateway import create_app
from gateway.live.livequery import LiveQueryClient
from tests.native.conftest import (  # noqa: F401 - fixtures shared with the native API tests
    audit_count,
    make_profile,
    make_record,
    provider_user,
    rows,
    share,
)


@pytest.fixture
def app(app_config):
    """The app; its live hub is stopped after the test (it registers a process-wide change listener)."""
    app = create_app(app_config)
    yield app
    app.extensions["phr_live"].stop()


@pytest.fixture
def hub(app):
    return app.extensions["phr_live"]


def iso_in(seconds: float) -> dict[str, str]:
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return {"__type": "Date", "iso": when.isoformat(timespec="milliseconds").replace("+00:00", "Z")}


class LiveSocket:
    """A LiveQuery client as the server sees one WebSocket: messages in with send(), out in `received`."""

    def __init__(self, hub):
        self.received: list[dict[str, Any]] = []
        self.client = LiveQueryClient(hub, lambda text: self.received.append(orjson.loads(text)))
        hub.attach(self.client)

    def send(self, message: dict[str, Any]) -> None:
        self.client.handle(orjson.dumps(message))

    def connect(self, token: str | None = None, **extra) -> dict[str, Any]:
        self.send({"op": "connect", "applicationId": "test-app", "sessionToken": token, **extra})
        return self.received[-1]

    def subscribe(self, request_id: int, class_name: str, where: dict | None = None, **extra) -> dict[str, Any]:
        query = {"className": class_name, "where": where or {}}
        for option in ("keys", "watch"):
            if option in extra:
                query[option] = extra.pop(option)
        self.send({"op": "subscribe", "requestId": request_id, "query": query, **extra})
        return self.received[-1]

    def events(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """Object events received (create, update, enter, leave, delete), then forgotten."""
        out = [m for m in self.received if m["op"] in ("create", "update", "enter", "leave", "delete")
               and (request_id is None or m["requestId"] == request_id)]
        self.received = [m for m in self.received if m not in out]
        return out


@pytest.fixture
def socket(hub):
    """socket() -> a new LiveSocket attached to the app's hub."""
    return lambda: LiveSocket(hub)
