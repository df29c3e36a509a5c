"""FHIR R4 Subscriptions: the resource (create, read, search, update, delete; owned by its creator), its
criteria checked as a FHIR search, the rest-hook channel (POSTs, headers, id-only payload, retries with
backoff, error and off statuses) and the websocket channel (bind / ping), each under the owner's access
at notification time."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from gateway.subscriptions.websocket import FhirSocketClient
from tests.conftest import pointer
from tests.live.conftest import iso_in
from tests.native.conftest import ok


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SUBSCRIPTION_RETRY_BASE_SECONDS": 0.01, "SUBSCRIPTION_ATTEMPTS": 3,
            "SUBSCRIPTION_MAX_FAILURES": 5, "SUBSCRIPTION_TIMEOUT_SECONDS": 2}


class Receiver:
    """A tiny HTTP endpoint on 127.0.0.1 that records what it is sent and answers `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class Fhir:
    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def h(self):
        return {"X-Parse-Session-Token": self.token, "Content-Type": "application/fhir+json"}

    def get(self, path, **kw):
        return self.client.get(f"/fhir/{path}", headers=self.h(), **kw)

    def post(self, path, body):
        return self.client.post(f"/fhir/{path}", data=orjson.dumps(body), headers=self.h())

    def put(self, path, body):
        return self.client.put(f"/fhir/{path}", data=orjson.dumps(body), headers=self.h())

    def delete(self, path):
        return self.client.delete(f"/fhir/{path}", headers=self.h())


def subscription(criteria: str, channel: dict, **extra) -> dict:
    return {"resourceType": "Subscription", "status": "requested", "reason": "keep my app in step",
            "criteria": criteria, "channel": channel, **extra}


@pytest.fixture
def alice(signup, make_profile, client):
    uid, native = signup("alice")
    return {"uid": uid, "native": native, "fhir": Fhir(client, native.token), "pid": make_profile(native, "Alice")}


def allergy(pid: str, **fields) -> dict:
    return {"substance": "Peanut", "severity": "severe", "reaction": "Hives", "profile": pointer("Profile", pid),
            **fields}


def created(r) -> dict:
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json


# ---- the resource ----

def test_create_read_search_update_delete(alice, receiver, signup, client):
    sub = created(alice["fhir"].post("Subscription", subscription(
        f"AllergyIntolerance?patient=Patient/{alice['pid']}",
        {"type": "rest-hook", "endpoint": receiver.url, "header": ["Authorization: Bearer s3cret"]})))
    assert sub["status"] == "active" and sub["meta"]["versionId"] == "1" and sub["id"]
    read = ok(alice["fhir"].get(f"Subscription/{sub['id']}"))
    assert read == sub
    found = ok(alice["fhir"].get("Subscription", query_string={"status": "active"}))
    assert [e["resource"]["id"] for e in found["entry"]] == [sub["id"]]
    # someone else neither sees nor touches it
    _, bob = signup("bob")
    assert Fhir(client, bob.token).get(f"Subscription/{sub['id']}").status_code == 404
    assert ok(Fhir(client, bob.token).get("Subscription"))["entry"] == []
    assert Fhir(client, bob.token).delete(f"Subscription/{sub['id']}").status_code == 404
    # the owner turns it off, then deletes it
    off = ok(alice["fhir"].put(f"Subscription/{sub['id']}", {**sub, "status": "off"}))
    assert off["status"] == "off" and off["meta"]["versionId"] == "2"
    assert alice["fhir"].delete(f"Subscription/{sub['id']}").status_code == 204
    assert alice["fhir"].get(f"Subscription/{sub['id']}").status_code == 410


def test_anonymous_callers_cannot_subscribe(client, receiver):
    r = client.post("/fhir/Subscription", data=orjson.dumps(subscription(
        "AllergyIntolerance", {"type": "rest-hook", "endpoint": receiver.url})),
        headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 401


@pytest.mark.parametrize("criteria, channel", [
    ("Foo?x=1", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}),
    ("AllergyIntolerance?no-such-param=1", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}),
    ("AllergyIntolerance?date=not-a-date", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}),
    ("AllergyIntolerance?_count=5", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}),
    ("", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h"}),
    ("AllergyIntolerance", {"type": "rest-hook"}),
    ("AllergyIntolerance", {"type": "rest-hook", "endpoint": "ftp://example.org/h"}),
    ("AllergyIntolerance", {"type": "email", "endpoint": "mailto:a@example.org"}),
    ("AllergyIntolerance", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h", "payload": "application/xml"}),
    ("AllergyIntolerance", {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/h", "header": ["no colon"]}),
])
def test_invalid_subscriptions_are_refused(alice, criteria, channel):
    r = alice["fhir"].post("Subscription", subscription(criteria, channel))
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.json["resourceType"] == "OperationOutcome"


def test_the_capability_statement_claims_subscriptions(client):
    cs = client.get("/fhir/metadata").json
    (entry,) = [r for r in cs["rest"][0]["resource"] if r["type"] == "Subscription"]
    assert {i["code"] for i in entry["interaction"]} == {"create", "read", "search-type", "update", "delete"}
    assert {p["name"] for p in entry["searchParam"]} >= {"status", "type", "url", "criteria"}
    assert entry["extension"][0]["valueUri"] == "ws://testserver/fhir/ws"


# ---- rest-hook ----

def test_rest_hook_notification_of_a_native_write(alice, receiver, hub):
    sub = created(alice["fhir"].post("Subscription", subscription(
        f"AllergyIntolerance?patient={alice['pid']}&criticality=high",
        {"type": "rest-hook", "endpoint": receiver.url, "header": ["Authorization: Bearer s3cret"]})))
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], severity="mild")), 201)  # criticality low
    hub.hooks.drain()
    assert receiver.received == []
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    hub.hooks.drain()
    (hit,) = receiver.received
    assert hit["path"] == "/hook" and hit["body"] == b"" and hit["headers"]["Authorization"] == "Bearer s3cret"
    assert ok(alice["fhir"].get(f"Subscription/{sub['id']}"))["status"] == "active"


def test_rest_hook_id_only_payload(alice, receiver, hub):
    created(alice["fhir"].post("Subscription", subscription(
        "AllergyIntolerance", {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"})))
    oid = ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    hub.hooks.drain()
    (hit,) = receiver.received
    assert hit["headers"]["Content-Type"] == "application/fhir+json"
    bundle = orjson.loads(hit["body"])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history"
    (entry,) = bundle["entry"]
    assert entry["fullUrl"] == f"http://testserver/fhir/AllergyIntolerance/{oid}" and "resource" not in entry
    assert entry["request"] == {"method": "POST", "url": f"AllergyIntolerance/{oid}"}


def test_a_failing_endpoint_is_retried_then_the_error_shows_then_it_is_turned_off(alice, receiver, hub):
    receiver.status = 500
    sub = created(alice["fhir"].post("Subscription", subscription(
        "AllergyIntolerance", {"type": "rest-hook", "endpoint": receiver.url})))
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    hub.hooks.drain()
    assert len(receiver.received) == 3  # SUBSCRIPTION_ATTEMPTS
    shown = ok(alice["fhir"].get(f"Subscription/{sub['id']}"))
    assert shown["status"] == "error" and "HTTP 500" in shown["error"] and "attempt 3 of 3" in shown["error"]
    # the endpoint recovers: the next notification succeeds and the Subscription is active again
    receiver.status = 204
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], substance="Latex")), 201)
    hub.hooks.drain()
    shown = ok(alice["fhir"].get(f"Subscription/{sub['id']}"))
    assert shown["status"] == "active" and "error" not in shown
    # failing again: after SUBSCRIPTION_MAX_FAILURES attempts in a row it is turned off, and stays quiet
    receiver.status = 503
    receiver.received.clear()
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], substance="Egg")), 201)
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], substance="Milk")), 201)
    hub.hooks.drain()
    assert len(receiver.received) == 5
    shown = ok(alice["fhir"].get(f"Subscription/{sub['id']}"))
    assert shown["status"] == "off" and "turned off after 5 failed attempts" in shown["error"]
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], substance="Soy")), 201)
    hub.hooks.drain()
    assert len(receiver.received) == 5


def test_rest_hooks_follow_the_owner_s_access(alice, receiver, hub, signup, client, provider_user, share):
    _, bob = signup("bob")
    created(Fhir(client, bob.token).post("Subscription", subscription(
        "AllergyIntolerance", {"type": "rest-hook", "endpoint": receiver.url + "/bob"})))
    uid, _, doctor = provider_user("dr.who")
    grant = share(alice["native"], alice["pid"], uid, scope=["allergies"])
    created(Fhir(client, doctor.token).post("Subscription", subscription(
        f"AllergyIntolerance?patient={alice['pid']}", {"type": "rest-hook", "endpoint": receiver.url + "/doctor"})))
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    hub.hooks.drain()
    assert [h["path"] for h in receiver.received] == ["/hook/doctor"]
    ok(alice["native"].put(f"/classes/SharedAccess/{grant}", {"revokedAt": iso_in(0)}))
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"], substance="Latex")), 201)
    hub.hooks.drain()
    assert [h["path"] for h in receiver.received] == ["/hook/doctor"]


# ---- websocket ----

class Socket:
    def __init__(self, hub, principal_now):
        self.received: list[str] = []
        self.client = FhirSocketClient(hub, principal_now, self.received.append)
        hub.attach(self.client)


def test_websocket_bind_and_ping(alice, hub, signup, client, receiver, master):
    from gateway.services.users import UserService

    def as_alice(session):
        users = UserService(session)
        return users.principal(users.session_for_token(alice["native"].token)[1])

    sub = created(alice["fhir"].post("Subscription", subscription(
        f"AllergyIntolerance?patient={alice['pid']}", {"type": "websocket"})))
    hook = created(alice["fhir"].post("Subscription", subscription(
        "AllergyIntolerance", {"type": "rest-hook", "endpoint": receiver.url})))
    _, bob = signup("bob")
    bobs = created(Fhir(client, bob.token).post("Subscription", subscription("AllergyIntolerance", {"type": "websocket"})))
    ws = Socket(hub, as_alice)
    ws.client.handle(f"bind {sub['id']}")
    ws.client.handle(f"bind {bobs['id']}")
    ws.client.handle(f"bind {hook['id']}")
    ws.client.handle("hello")
    assert ws.received == [f"bound {sub['id']}", f"error 404 {bobs['id']} no such Subscription",
                           f"error 400 {hook['id']} is not a websocket Subscription",
                           "error 400 expected 'bind <Subscription id>'"]
    ws.received.clear()
    ok(alice["native"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    ok(alice["native"].post("/classes/Medication", {"name": "Metformin", "profile": pointer("Profile", alice["pid"])}),
       201)
    assert ws.received == [f"ping {sub['id']}"]
    # a session that ended gets no more pings
    ws.received.clear()
    ok(alice["native"].post("/logout"))
    ok(master.post("/classes/Allergy", allergy(alice["pid"], substance="Latex")), 201)
    assert ws.received == []
