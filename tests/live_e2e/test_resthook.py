"""Issue 8, 'Done when': a rest-hook Subscription registered through the FHIR API receives the notification
of a write made through the native API; a failing endpoint (HTTP 500) is retried, then the Subscription
shows the error. The real server; the endpoints are tiny HTTP receivers on 127.0.0.1 in this test."""
from __future__ import annotations

import time

import pytest

from tests.live.test_subscriptions import Receiver, subscription
from tests.live_e2e.rest import pointer, signup

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_rest_hook_notification_then_a_failing_endpoint(ws_server, receiver):
    _, alice = signup(ws_server, "alice")
    pid = alice.parse("POST", "/classes/Profile", {"fullName": "Alice Example"}, expect=201)["objectId"]
    sub = alice.fhir("POST", "Subscription", subscription(
        f"AllergyIntolerance?patient=Patient/{pid}",
        {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json",
         "header": ["Authorization: Bearer hook-secret"]}), expect=201)
    assert sub["status"] == "active"

    oid = alice.parse("POST", "/classes/Allergy", {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
                                                   "profile": pointer("Profile", pid)}, expect=201)["objectId"]
    assert wait_for(lambda: receiver.received), ws_server.process.log_tail()
    time.sleep(0.5)
    (hit,) = receiver.received  # once, whatever the number of server processes
    assert hit["headers"]["Authorization"] == "Bearer hook-secret"
    assert f"AllergyIntolerance/{oid}" in hit["body"].decode() and "Peanut" not in hit["body"].decode()

    # the endpoint fails: retried with backoff (3 attempts here), then the Subscription shows the error
    receiver.status = 500
    receiver.received.clear()
    alice.parse("PUT", f"/classes/Allergy/{oid}", {"notes": "carries an auto-injector"})
    assert wait_for(lambda: len(receiver.received) >= 3), ws_server.process.log_tail()

    def shows_error():
        shown = alice.fhir("GET", f"Subscription/{sub['id']}")
        return shown if shown["status"] == "error" and "attempt 3 of 3" in shown.get("error", "") else None

    assert wait_for(shows_error, 5), alice.fhir("GET", f"Subscription/{sub['id']}")
    shown = shows_error()
    assert "HTTP 500" in shown["error"] and receiver.url in shown["error"]
    time.sleep(0.5)
    assert len(receiver.received) == 3
