"""The websocket channel of FHIR Subscriptions on the real server: `bind <id>` over ws://host/fhir/ws with
the owner's session token, then `ping <id>` when a matching resource is written through the native API
(on PostgreSQL the socket and the write may be in different worker processes)."""
from __future__ import annotations

import time

import pytest
import simple_websocket

from tests.live.test_subscriptions import subscription
from tests.live_e2e.rest import pointer, signup

pytestmark = pytest.mark.e2e


def test_bind_then_ping(ws_server):
    _, alice = signup(ws_server, "alice")
    _, bob = signup(ws_server, "bob")
    pid = alice.parse("POST", "/classes/Profile", {"fullName": "Alice Example"}, expect=201)["objectId"]
    sub = alice.fhir("POST", "Subscription", subscription(f"AllergyIntolerance?patient={pid}", {"type": "websocket"}),
                     expect=201)
    url = ws_server.url.replace("http", "ws", 1) + "/fhir/ws"
    mine = simple_websocket.Client.connect(url, headers={"X-Parse-Session-Token": alice.token})
    other = simple_websocket.Client.connect(url, headers={"X-Parse-Session-Token": bob.token})
    try:
        mine.send(f"bind {sub['id']}")
        assert mine.receive(timeout=5) == f"bound {sub['id']}"
        other.send(f"bind {sub['id']}")
        assert other.receive(timeout=5).startswith("error 404")
        started = time.monotonic()
        alice.parse("POST", "/classes/Allergy", {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
                                                 "profile": pointer("Profile", pid)}, expect=201)
        assert mine.receive(timeout=5) == f"ping {sub['id']}", ws_server.process.log_tail()
        assert time.monotonic() - started < 1.0
        assert other.receive(timeout=1) is None
    finally:
        mine.close()
        other.close()
