"""The access log: one JSON line per request on every face (the Flask-free native GET and FHIR read too),
with its request id, route template, status, duration, size and who called, and nothing of the request's
data: the test's own names, values, ids, passwords and tokens never appear in it."""
from __future__ import annotations

import re

import orjson
import pytest

from gateway import create_app
from gateway.access import ANONYMOUS, MASTER, Principal, SmartContext
from gateway.ops.wsgi import caller_kind
from gateway.scopes import parse as parse_scopes
from tests.conftest import APP_ID, MASTER_KEY, pointer
from tests.native.conftest import ok
from tests.ops.conftest import access_lines, by_request_id

# What this test writes and asks for: none of it may reach the log.
USERNAME = "quetzalia-marchbanks"
PASSWORD = "pw-Xylophone-7731"
WRONG_PASSWORD = "pw-Wrong-Secret-9042"
FULL_NAME = "Quetzalia Marchbanks"
SUBSTANCE = "Pistachio-Unicornium"
REACTION = "Glitterhives"


def test_every_face_logs_one_line_per_request_with_no_data_of_it(client, parse, master, make_profile, capfd):
    capfd.readouterr()
    r = parse.post("/users", {"username": USERNAME, "password": PASSWORD})
    token = ok(r, 201)["sessionToken"]
    user_id = r.json["objectId"]
    me = parse.as_user(token)
    pid = make_profile(me, FULL_NAME)
    rid = ok(me.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": SUBSTANCE,
                                         "severity": "severe", "reaction": REACTION}), 201)["objectId"]
    fhir = {"X-Parse-Session-Token": token, "Accept": "application/fhir+json"}
    expected = []  # (response, face, method, route, status, principal)

    def saw(resp, face, method, route, status, principal):
        assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
        resp.get_data()  # the whole answer, as a server sends it
        expected.append((resp, face, method, route, status, principal))

    saw(me.get(f"/classes/Allergy/{rid}"), "native", "GET", "/parse/classes/{className}/{objectId}", 200,
        "user")
    saw(me.get("/classes/Allergy", {"where": {"substance": SUBSTANCE, "reaction": {"$regex": REACTION}}}),
        "native", "GET", "/parse/classes/{className}", 200, "user")
    saw(me.put(f"/classes/Allergy/{rid}", {"reaction": REACTION + "-worse"}), "native", "PUT",
        "/parse/classes/{className}/{objectId}", 200, "user")
    saw(master.get(f"/users/{user_id}"), "native", "GET", "/parse/users/{objectId}", 200, "master")
    saw(parse.post("/login", {"username": USERNAME, "password": WRONG_PASSWORD}), "native", "POST",
        "/parse/login", 404, "anonymous")
    saw(parse.get(f"/classes/Allergy/{rid}", headers={"X-Parse-Session-Token": "r:" + "0" * 32}), "native",
        "GET", "/parse/classes/{className}/{objectId}", 400, None)
    saw(client.get(f"/fhir/Patient/{pid}", headers=fhir), "fhir", "GET", "/fhir/{type}/{id}", 200, "user")
    saw(client.get(f"/fhir/AllergyIntolerance/{rid}", headers=fhir), "fhir", "GET", "/fhir/{type}/{id}", 200,
        "user")
    saw(client.get("/fhir/Patient", query_string={"name": FULL_NAME.split()[0]}, headers=fhir), "fhir", "GET",
        "/fhir/{type}", 200, "user")
    saw(client.get(f"/fhir/Patient/{pid}/$everything", headers=fhir), "fhir", "GET",
        "/fhir/Patient/{id}/$everything", 200, "user")
    saw(client.post("/parse/graphql", data=orjson.dumps({"query": '{ allergies(where: {substance: {equalTo: "'
                                                         + SUBSTANCE + '"}}) { count } }'}),
                    headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": token,
                             "Content-Type": "application/json"}),
        "graphql", "POST", "/parse/graphql", 200, "user")
    saw(client.get("/healthz"), "ops", "GET", "/healthz", 200, None)
    saw(client.get(f"/nowhere/{SUBSTANCE}?q={REACTION}"), "other", "GET", "{unmatched}", 404, None)
    captured = capfd.readouterr()
    lines = by_request_id(captured.out)

    for resp, face, method, route, status, principal in expected:
        line = lines[resp.headers["X-Request-Id"]]
        assert (line["face"], line["method"], line["route"], line["status"], line["principal"]) == \
            (face, method, route, status, principal), line
        assert line["bytes"] == len(resp.get_data())
        assert line["duration_ms"] >= 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["time"]), line["time"]
        assert line["client_id"] is None
    # The signup, profile and first allergy were logged too: one line per request, none more.
    assert len(lines) == len(expected) + 3
    for secret in (USERNAME, PASSWORD, WRONG_PASSWORD, FULL_NAME, FULL_NAME.split()[0], SUBSTANCE, REACTION,
                   token, token[2:], user_id, pid, rid, MASTER_KEY):
        assert secret not in captured.out, secret
        assert secret not in captured.err, secret


def test_a_proxy_request_id_is_kept_and_anything_else_replaced(client, capfd):
    capfd.readouterr()
    kept = client.get("/healthz", headers={"X-Request-Id": "edge-7f3a:42"})
    kept.get_data()
    assert kept.headers["X-Request-Id"] == "edge-7f3a:42"
    for bad in ("two words", "x" * 129, "é-accent", ""):
        r = client.get("/healthz", headers={"X-Request-Id": bad})
        r.get_data()
        assert r.headers["X-Request-Id"] != bad and re.fullmatch(r"[0-9a-f]{24}", r.headers["X-Request-Id"])
    lines = access_lines(capfd.readouterr().out)
    assert [line["request_id"] for line in lines][0] == "edge-7f3a:42"
    assert len({line["request_id"] for line in lines}) == 5


def test_the_switch_turns_the_access_log_off_but_keeps_request_ids(app_config, capfd, monkeypatch):
    monkeypatch.setenv("PHR_ACCESS_LOG", "off")
    app = create_app({k: v for k, v in app_config.items() if k != "ACCESS_LOG"})
    capfd.readouterr()
    r = app.test_client().get("/healthz")
    r.get_data()
    assert r.status_code == 200 and r.headers["X-Request-Id"]
    assert access_lines(capfd.readouterr().out) == []


def test_a_smart_app_is_logged_with_its_client_id(client, smart, alice, capfd):
    app = smart.register(kind="none")
    t = smart.login(app, "launch/patient patient/*.rs", "alice", patient=alice.patient_id)
    capfd.readouterr()
    r = client.get(f"/fhir/Observation/{alice.record['Observation'][0]}",
                   headers={"Authorization": f"Bearer {t['access_token']}"})
    assert r.status_code == 200
    r.get_data()
    out = capfd.readouterr().out
    line = by_request_id(out)[r.headers["X-Request-Id"]]
    assert (line["principal"], line["client_id"]) == ("smart-app", app.client_id)
    assert t["access_token"] not in out and alice.patient_id not in out


def test_principal_kinds():
    smart = SmartContext(scopes=parse_scopes("system/*.rs"), client_id="c1")
    assert caller_kind(None) is None
    assert caller_kind(ANONYMOUS) == "anonymous"
    assert caller_kind(MASTER) == "master"
    assert caller_kind(Principal(user_id="u1", role="patient")) == "user"
    assert caller_kind(Principal(user_id="u1", role="patient", client_id="c1", smart=smart)) == "smart-app"
    system = Principal(provider_ids=frozenset({"p1"}), client_id="c1", smart=smart)
    assert caller_kind(system) == "backend-client"


@pytest.mark.parametrize("face", ["native", "fhir", "graphql"])
def test_an_error_is_logged_with_its_request_id_and_stack_but_not_its_message(face, client, signup,
                                                                               monkeypatch, capfd):
    """A bug deep in a service: the client gets the face's 500, the log the request id, the frames and the
    exception's type, never its message (it may quote a patient's data)."""
    _, me = signup("errol")

    def broken(*_a, **_k):
        raise RuntimeError(f"boom while reading {SUBSTANCE} for {FULL_NAME}")

    if face == "fhir":  # the Flask-free read's own error answer
        monkeypatch.setattr("gateway.fhir.views.answer_read", broken)
        r = client.get("/fhir/Patient/abc", headers={"X-Parse-Session-Token": me.token})
    elif face == "native":
        monkeypatch.setattr("gateway.services.objects.ObjectService.create", broken)
        r = me.post("/classes/Profile", {"fullName": FULL_NAME})
    else:
        monkeypatch.setattr("gateway.graphql.run", broken)
        r = client.post("/parse/graphql", data=orjson.dumps({"query": "{ viewer { username } }"}),
                        headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": me.token,
                                 "Content-Type": "application/json"})
    assert r.status_code == (200 if face == "graphql" else 500), r.get_data(as_text=True)  # GraphQL: 200
    body = r.get_data(as_text=True)
    assert SUBSTANCE not in body
    err = capfd.readouterr().err
    errors = [orjson.loads(line) for line in err.splitlines() if line.startswith("{") and '"error"' in line]
    assert errors, err
    logged = errors[-1]
    assert logged["level"] == "error" and logged["request_id"] == r.headers["X-Request-Id"]
    assert logged["error"] == "RuntimeError"
    assert logged["stack"][-1] == "builtins.RuntimeError"
    assert any(" in broken" in frame for frame in logged["stack"])
    assert SUBSTANCE not in err and FULL_NAME not in err

