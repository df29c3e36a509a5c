"""Plain FHIR reads are answered before Flask (gateway/fhir/wsgi.py) exactly as the route answers them:
same status, headers and body for every kind of caller, success or error; anything else goes to Flask."""
from __future__ import annotations

import pytest
from werkzeug.test import Client

from tests.conftest import APP_ID, MASTER_KEY
from tests.smart.conftest import share

SCOPE = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs offline_access"


@pytest.fixture
def both(app):
    """(through the FHIR front, Flask alone) as werkzeug test clients of the same app."""
    front = app.wsgi_app.downstream.downstream  # Observed -> NativeReads -> FhirReads -> Flask
    assert type(front).__name__ == "FhirReads"
    return Client(front), Client(front.downstream)


def _get(client: Client, path: str, headers: dict):
    r = client.get(path, headers=headers)
    return r.status_code, sorted(r.headers.items()), r.get_data()


def test_the_front_answers_as_flask_does(both, smart, alice, bob, make_user):
    front, flask_only = both
    obs = alice.record["Observation"][0]
    allergy = alice.record["AllergyIntolerance"][0]
    grantee_uid, grantee = make_user("dr.grey", role="provider")
    share(alice, grantee_uid, scope=("labs",))
    _, drwho = make_user("dr.who", role="provider")  # no grant at all
    assert alice.fhir.delete(f"Observation/{alice.record['Observation'][1]}").status_code in (200, 204)
    app = smart.register(kind="none")
    token = smart.login(app, SCOPE, "alice", patient=alice.patient_id)["access_token"]

    who = {
        "alice": alice.fhir.headers(), "bob": bob.fhir.headers(), "master": {"X-Parse-Master-Key": MASTER_KEY},
        "bad-master": {"X-Parse-Master-Key": "nope"}, "nobody": {}, "stranger": {"X-Parse-Session-Token": drwho.token},
        "grantee": {"X-Parse-Session-Token": grantee.token},
        "bad-session": {"X-Parse-Session-Token": "r:nope"}, "bearer": {"Authorization": f"Bearer {token}"},
        "bad-bearer": {"Authorization": "Bearer nope"}, "app-id-only": {"X-Parse-Application-Id": APP_ID},
    }
    paths = [
        f"/fhir/Observation/{obs}", f"/fhir/Observation/{alice.record['Observation'][1]}",  # deleted: 410
        f"/fhir/AllergyIntolerance/{allergy}",  # outside the bearer token's scopes: 403
        f"/fhir/Patient/{alice.patient_id}", f"/fhir/Patient/{bob.patient_id}", "/fhir/Observation/doesNotExist",
        f"/fhir/Immunization/{obs}",  # an id of another type
        "/fhir/Observation/" + "a" * 64,
    ]
    compared = 0
    for name, headers in who.items():
        for path in paths:
            through_front, through_flask = _get(front, path, headers), _get(flask_only, path, headers)
            assert through_front == through_flask, (name, path, through_front[:2], through_flask[:2])
            compared += 1
    assert compared == len(who) * len(paths)
    # Not only errors: owner, master, grantee (labs) and the bearer token read through the front.
    for name in ("alice", "master", "bearer", "grantee"):
        assert _get(front, f"/fhir/Observation/{obs}", who[name])[0] == 200, name
    assert _get(front, f"/fhir/AllergyIntolerance/{allergy}", who["bearer"])[0] == 403
    assert _get(front, f"/fhir/Observation/{alice.record['Observation'][1]}", who["alice"])[0] == 410


def test_the_front_takes_only_plain_reads(app):
    front = app.wsgi_app.downstream.downstream

    def takes(path: str, method: str = "GET", query: str = "", **extra) -> bool:
        return front.takes({"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, **extra}) is not None

    assert takes("/fhir/Observation/abc-1.2")
    assert not takes("/fhir/Observation/abc", query="_summary=true")  # parameters: the route handles them
    assert not takes("/fhir/Observation/abc", method="HEAD")
    assert not takes("/fhir/Observation/abc", method="DELETE")
    assert not takes("/fhir/Observation/abc", CONTENT_LENGTH="5")
    assert not takes("/fhir/Binary/abc")  # its own route
    assert not takes("/fhir/Subscription/abc")
    assert not takes("/fhir/Patient/$export") and not takes("/fhir/Observation/_history")
    assert not takes("/fhir/Patient/abc/$everything") and not takes("/fhir/Patient/abc/_history/1")
    assert not takes("/fhir/Observation/" + "a" * 65) and not takes("/fhir/metadata")


def test_a_grantees_read_through_the_front_is_audited(app, both, alice, make_user):
    from sqlalchemy import func, select

    from gateway.models import AuditLog

    front, _ = both
    uid, doc = make_user("dr.house", role="provider")
    share(alice, uid, scope=("labs",))
    factory = app.extensions["phr_db"][1]
    obs = alice.record["Observation"][0]

    def reads() -> int:
        with factory() as s:
            return s.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.action == "read", AuditLog.actor_id == uid, AuditLog.entity_id == obs))

    assert reads() == 0
    assert _get(front, f"/fhir/Observation/{obs}", {"X-Parse-Session-Token": doc.token})[0] == 200
    assert reads() == 1
    assert _get(front, f"/fhir/AllergyIntolerance/{alice.record['AllergyIntolerance'][0]}",
                {"X-Parse-Session-Token": doc.token})[0] == 404  # outside the grant: not found, not audited
    assert reads() == 1
