"""Parse LiveQuery (gateway/live/livequery.py): the protocol of the Parse JS SDK's LiveQueryClient, events
for changes made through the native and the FHIR APIs, enter/leave, and the access policy on every event."""
from __future__ import annotations

import orjson
import pytest

from tests.conftest import pointer
from tests.live.conftest import iso_in
from tests.native.conftest import ok


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("alice")
    return {"uid": uid, "client": client, "token": client.token, "pid": make_profile(client, "Alice")}


def allergy(pid: str, **fields) -> dict:
    return {"substance": "Peanut", "severity": "severe", "reaction": "Hives", "profile": pointer("Profile", pid),
            **fields}


# ---- the protocol ----

def test_connect_answers_connected_with_a_client_id(socket, alice):
    ws = socket()
    reply = ws.connect(alice["token"])
    assert reply["op"] == "connected" and reply["clientId"]


@pytest.mark.parametrize("extra, code", [
    ({"applicationId": "wrong"}, 4),
    ({"sessionToken": "r:not-a-token"}, 209),
])
def test_connect_checks_keys_and_session_token_like_the_rest_face(socket, alice, extra, code):
    ws = socket()
    reply = ws.connect(alice["token"], **extra)
    assert reply["op"] == "error" and reply["code"] == code, reply


def test_javascript_key_is_checked_when_configured(app_config):
    from gateway import create_app
    from tests.live.conftest import LiveSocket

    app = create_app({**app_config, "JAVASCRIPT_KEY": "js-key"})
    try:
        hub = app.extensions["phr_live"]
        assert LiveSocket(hub).connect()["code"] == 4
        assert LiveSocket(hub).connect(javascriptKey="js-key")["op"] == "connected"
    finally:
        app.extensions["phr_live"].stop()


def test_subscribe_before_connect_is_an_error(socket, alice):
    ws = socket()
    reply = ws.subscribe(1, "Allergy")
    assert reply["op"] == "error" and reply["code"] == 2


def test_subscribe_and_unsubscribe(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    assert ws.subscribe(7, "Allergy", {"profile": pointer("Profile", alice["pid"])}) == {
        "op": "subscribed", "clientId": ws.client.client_id, "requestId": 7}
    ws.send({"op": "unsubscribe", "requestId": 7})
    assert ws.received[-1] == {"op": "unsubscribed", "clientId": ws.client.client_id, "requestId": 7}
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert ws.events() == []


@pytest.mark.parametrize("query, code", [
    ({"className": "NoSuchClass"}, 119),
    ({"className": "_User"}, 119),
    ({"className": "Allergy", "where": {"severity": {"$bogus": 1}}}, 102),
])
def test_bad_subscriptions_are_refused_with_the_request_id(socket, alice, query, code):
    ws = socket()
    ws.connect(alice["token"])
    ws.send({"op": "subscribe", "requestId": 3, "query": query})
    assert ws.received[-1]["op"] == "error" and ws.received[-1]["code"] == code
    assert ws.received[-1]["requestId"] == 3


# ---- events ----

def test_create_update_delete_as_the_rest_face_shows_them(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {"profile": pointer("Profile", alice["pid"])})
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    (created,) = ws.events()
    assert created["op"] == "create" and created["requestId"] == 1 and created["clientId"] == ws.client.client_id
    shown = ok(alice["client"].get(f"/classes/Allergy/{oid}"))
    assert created["object"] == {**shown, "className": "Allergy", "__type": "Object"}

    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"notes": "carries an auto-injector"}))
    (updated,) = ws.events()
    assert updated["op"] == "update" and updated["object"]["notes"] == "carries an auto-injector"

    ok(alice["client"].delete(f"/classes/Allergy/{oid}"))
    (deleted,) = ws.events()
    assert deleted["op"] == "delete" and deleted["object"]["objectId"] == oid


def test_where_and_keys(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {"severity": "severe"}, keys=["substance"])
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], severity="mild")), 201)
    assert ws.events() == []
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], substance="Shellfish")), 201)
    (event,) = ws.events()
    assert event["object"]["substance"] == "Shellfish"
    assert "severity" not in event["object"] and "reaction" not in event["object"]


def test_enter_and_leave(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    ws.subscribe(1, "Allergy", {"severity": "severe"})  # it matches already: known from the start
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"severity": "mild"}))
    assert [e["op"] for e in ws.events()] == ["leave"]
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"reaction": "Rash"}))
    assert ws.events() == []  # it does not match: nothing
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"severity": "severe"}))
    assert [e["op"] for e in ws.events()] == ["enter"]
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"reaction": "Swelling"}))
    assert [e["op"] for e in ws.events()] == ["update"]


def test_update_and_leave_carry_the_original_as_it_was_shown(socket, alice):
    """As Parse Server: `original` is the object before the change (the version it replaced), with the
    subscription's `keys`; create, enter and delete have none."""
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {"severity": "severe"}, keys=["substance", "notes", "severity"])
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], notes="first")), 201)["objectId"]
    (created,) = ws.events()
    assert "original" not in created
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"notes": "second"}))
    (updated,) = ws.events()
    assert updated["object"]["notes"] == "second"
    assert updated["original"] == {**created["object"], "className": "Allergy", "__type": "Object"}
    assert "reaction" not in updated["original"]  # keys apply to it too
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"severity": "mild"}))
    (left,) = ws.events()
    assert left["op"] == "leave"
    assert (left["original"]["severity"], left["object"]["severity"]) == ("severe", "mild")
    assert left["original"]["notes"] == "second"
    assert left["original"]["updatedAt"] == updated["object"]["updatedAt"]
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"severity": "severe"}))
    (entered,) = ws.events()
    assert entered["op"] == "enter" and "original" not in entered


def test_watch_sends_creates_and_updates_only_when_a_watched_field_changes(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {"profile": pointer("Profile", alice["pid"])}, watch=["severity", "notes"])
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    assert [e["op"] for e in ws.events()] == ["create"]  # a watched field is set
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"reaction": "Rash"}))
    assert ws.events() == []  # nothing watched changed
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"notes": "new", "reaction": "Swelling"}))
    (event,) = ws.events()
    assert event["op"] == "update" and event["object"]["reaction"] == "Swelling"
    assert (event["original"]["reaction"], event["original"].get("notes")) == ("Rash", None)
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"notes": "new"}))  # the same value: no change
    assert ws.events() == []
    ok(alice["client"].delete(f"/classes/Allergy/{oid}"))
    assert [e["op"] for e in ws.events()] == ["delete"]  # not filtered


def test_watch_skips_a_create_without_the_watched_fields(socket, alice):
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {}, watch=["notes"])
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert ws.events() == []
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], notes="x")), 201)
    assert [e["op"] for e in ws.events()] == ["create"]


@pytest.mark.parametrize("watch", ["severity", [1], {"a": 1}])
def test_a_watch_that_is_not_a_list_of_names_is_refused(socket, alice, watch):
    ws = socket()
    ws.connect(alice["token"])
    ws.send({"op": "subscribe", "requestId": 4,
             "query": {"className": "Allergy", "where": {}, "watch": watch}})
    reply = ws.received[-1]
    assert (reply["op"], reply["code"], reply["requestId"]) == ("error", 102, 4)


def test_a_change_made_through_the_fhir_api_arrives(socket, alice, client):
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", {"profile": pointer("Profile", alice["pid"])})
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    ws.events()
    headers = {"X-Parse-Session-Token": alice["token"]}
    resource = client.get(f"/fhir/AllergyIntolerance/{oid}", headers=headers).json
    resource["note"] = [{"text": "from FHIR"}]
    r = client.put(f"/fhir/AllergyIntolerance/{oid}", data=orjson.dumps(resource),
                   headers={**headers, "Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.get_data(as_text=True)
    (event,) = ws.events()
    assert event["op"] == "update" and event["object"]["objectId"] == oid and event["object"]["notes"] == "from FHIR"


# ---- the access policy ----

def test_another_user_receives_nothing(socket, alice, signup):
    _, bob = signup("bob")
    ws = socket()
    ws.connect(bob.token)
    ws.subscribe(1, "Allergy")
    ws.subscribe(2, "Allergy", {"profile": pointer("Profile", alice["pid"])})
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"severity": "mild"}))
    ok(alice["client"].delete(f"/classes/Allergy/{oid}"))
    assert ws.events() == []


def test_a_subscription_token_other_than_the_connection_s_is_used(socket, alice, signup):
    _, bob = signup("bob")
    ws = socket()
    ws.connect(alice["token"])
    ws.subscribe(1, "Allergy", sessionToken=bob.token)  # bob's subscription on alice's connection
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert ws.events() == []


def test_a_provider_with_a_grant_gets_events_until_it_is_revoked(socket, alice, provider_user, share):
    uid, _, doctor = provider_user("dr.who")
    grant = share(alice["client"], alice["pid"], uid, scope=["allergies"])
    ws = socket()
    ws.connect(doctor.token)
    ws.subscribe(1, "Allergy", {"profile": pointer("Profile", alice["pid"])})
    ws.subscribe(2, "Medication")  # not in the grant's scope
    oid = ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)["objectId"]
    ok(alice["client"].post("/classes/Medication", {"name": "Metformin", "profile": pointer("Profile", alice["pid"])}),
       201)
    assert [(e["op"], e["requestId"]) for e in ws.events()] == [("create", 1)]

    ok(alice["client"].put(f"/classes/SharedAccess/{grant}", {"revokedAt": iso_in(0)}))
    ok(alice["client"].put(f"/classes/Allergy/{oid}", {"notes": "after the revocation"}))
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], substance="Latex")), 201)
    ok(alice["client"].delete(f"/classes/Allergy/{oid}"))
    assert ws.events() == []  # not even a leave: the provider may no longer see the object


def test_an_expired_grant_stops_events_at_once(socket, alice, provider_user, share):
    uid, _, doctor = provider_user("dr.who")
    grant = share(alice["client"], alice["pid"], uid, scope=["allergies"], expiresAt=iso_in(3600))
    ws = socket()
    ws.connect(doctor.token)
    ws.subscribe(1, "Allergy")
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert len(ws.events()) == 1
    ok(alice["client"].put(f"/classes/SharedAccess/{grant}", {"expiresAt": iso_in(-1)}))
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"], substance="Latex")), 201)
    assert ws.events() == []


def test_a_logged_out_session_stops_events(socket, alice, parse):
    r = parse.post("/login", {"username": "alice", "password": "pw-123456"})
    token = ok(r)["sessionToken"]
    ws = socket()
    ws.connect(token)
    ws.subscribe(1, "Allergy")
    ok(parse.as_user(token).post("/logout"))
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert ws.events() == []


def test_events_to_a_provider_are_audited_like_reads(socket, alice, provider_user, share, audit_count):
    uid, _, doctor = provider_user("dr.who")
    share(alice["client"], alice["pid"], uid, scope=["allergies"])
    ws = socket()
    ws.connect(doctor.token)
    ws.subscribe(1, "Allergy")
    before = audit_count(action="read", actor_id=uid)
    ok(alice["client"].post("/classes/Allergy", allergy(alice["pid"])), 201)
    assert len(ws.events()) == 1
    assert audit_count(action="read", actor_id=uid) == before + 1
