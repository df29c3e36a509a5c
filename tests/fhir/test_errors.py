"""Every error of the FHIR face is an OperationOutcome with the right HTTP status (R4 http.html), and a
refused write leaves nothing behind."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway import create_app
from gateway.fhir.routes import ROUTES
from gateway.models import AuditLog, FhirHistory, FhirIndex, FhirResource, LabResult
from tests.fhir import synthea
from tests.fhir.conftest import MASTER_KEY, Fhir, body, outcome

SAMPLE = {"<rt>": "Observation", "<rid>": "abcdefghij", "<vid>": "1"}


def _url(path: str) -> str:
    for k, v in SAMPLE.items():
        path = path.replace(k, v)
    return path or "/"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path or '/'}")
def test_every_route_needs_authentication(anonymous, route):
    data = b"{}" if route.method in ("POST", "PUT", "PATCH") else None
    content_type = "application/x-www-form-urlencoded" if route.path.endswith("_search") else None
    kw = {"content_type": content_type} if content_type else {}
    r = anonymous.request(route.method, _url(route.path), data=data, **kw)
    oo = outcome(r, 401, "login")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert oo["issue"][0]["diagnostics"]


def test_a_wrong_master_key_is_401(client):
    r = client.get("/fhir/Patient", headers={"X-Parse-Master-Key": MASTER_KEY + "x"})
    outcome(r, 401)
    r = client.get("/fhir/Patient", headers={"X-Parse-Session-Token": "r:not-a-session"})
    assert r.status_code in (401, 404) and r.mimetype == "application/fhir+json"
    outcome(r, r.status_code)


@pytest.mark.parametrize("method, path", [
    ("GET", "Foo"), ("GET", "Foo/abc"), ("POST", "Foo"), ("GET", "Observation/nosuchid00"),
    ("GET", "Observation/nosuchid00/_history"), ("DELETE", "Observation/nosuchid00"),
    ("GET", "Patient/nosuchid00/$everything"), ("GET", "Binary/nosuchid00-v1"), ("GET", "no/such/path/at/all"),
])
def test_not_found(alice, method, path):
    r = alice.fhir.request(method, path, json={"resourceType": "Foo"} if method == "POST" else None)
    outcome(r, 404, "not-found")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_audit_event_is_append_only(alice, fhir_master, method):
    """Nobody, not even the master key, writes AuditEvents through FHIR: 405."""
    event = fhir_master.search("AuditEvent", {"_count": "1"})["entry"][0]["resource"]
    path = "AuditEvent" if method == "POST" else f"AuditEvent/{event['id']}"
    ops = [{"op": "replace", "path": "/outcome", "value": "0"}]
    r = fhir_master.request(method, path, json=ops if method == "PATCH" else (event if method != "DELETE" else None),
                            content_type="application/json-patch+json" if method == "PATCH" else "application/fhir+json")
    assert r.status_code in (403, 405), r.get_data(as_text=True)
    outcome(r, r.status_code)
    assert fhir_master.read(f"AuditEvent/{event['id']}") == event


def test_unsupported_method_on_a_route(alice):
    outcome(alice.fhir.request("DELETE", "Observation"), 405)
    outcome(alice.fhir.request("PATCH", "metadata", json=[]), 405)


def test_writing_into_someone_elses_record(alice, bob):
    r = bob.fhir.post("Observation", synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1)))
    outcome(r, 403)


def counts(db_session):
    return [db_session.scalar(select(func.count()).select_from(m))
            for m in (FhirResource, FhirHistory, FhirIndex, LabResult, AuditLog)]


@pytest.mark.parametrize("case", ["malformed", "empty", "wrong-type", "invalid", "unknown-element", "id-mismatch",
                                  "not-json-type", "array"])
def test_bad_bodies_write_nothing(alice, db_session, case):
    rid = alice.record["Observation"][0]
    good = synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1))
    before = counts(db_session)
    kw = {}
    if case == "malformed":
        r, status = alice.fhir.post("Observation", data=b'{"resourceType": "Observation",'), 400
    elif case == "empty":
        r, status = alice.fhir.post("Observation", data=b"  "), 400
    elif case == "wrong-type":
        r, status = alice.fhir.put(f"Observation/{rid}", dict(synthea.patient("A", "B"), id=rid)), 400
    elif case == "invalid":
        r, status = alice.fhir.post("Observation", dict(good, status="bogus")), 422
    elif case == "unknown-element":
        r, status = alice.fhir.post("Observation", dict(good, colour="blue")), 422
    elif case == "id-mismatch":
        r, status = alice.fhir.put(f"Observation/{rid}", dict(good, id="OtherId001")), 400
    elif case == "not-json-type":
        r, status = alice.fhir.post("Observation", data=b"<Observation/>", content_type="application/fhir+xml"), 400
    else:
        r, status = alice.fhir.post("Observation", [good], **kw), 400
    outcome(r, status)
    assert counts(db_session) == before


def test_body_too_large(app_config):
    app = create_app({**app_config, "MAX_CONTENT_LENGTH": 4096})
    fhir = Fhir(app.test_client(), master=True)
    big = synthea.patient("Doe", "Jane")
    big["name"][0]["text"] = "x" * 10000
    outcome(fhir.post("Patient", big), 413, "too-costly")


def test_invalid_search_is_400_not_500(alice):
    for params in ({"date": "gt"}, {"_count": "x"}, {"value-quantity": "ltx"}, {"_cursor": "garbage"},
                   {"_sort": "-"}, {"_include": "a:b:c:d"}, {"_has:Observation": "x"}):
        r = alice.fhir.get("Observation" if "_has" not in str(params) else "Patient", params)
        assert r.status_code == 400, (params, r.get_data(as_text=True))
        outcome(r, 400)


def test_errors_carry_cors_headers(anonymous):
    r = anonymous.get("Patient")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert body(anonymous.get("metadata"))["resourceType"] == "CapabilityStatement"
