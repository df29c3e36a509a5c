"""The native hot reads are answered before Flask (gateway/native/wsgi.py) exactly as Flask's route answers
them: same status, headers and body, for successes and errors alike."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from werkzeug.test import Client

from tests.conftest import APP_ID, MASTER_KEY, pointer
from tests.native.conftest import ok


@pytest.fixture
def both(app):
    """(through the front, Flask alone) as werkzeug test clients of the same app."""
    front = app.wsgi_app.downstream  # Observed (request id, access log) -> NativeReads
    assert type(front).__name__ == "NativeReads"
    return Client(front), Client(front.downstream)


def _get(client: Client, path: str, headers: dict, query: dict | None = None):
    qs = urlencode({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in (query or {}).items()})
    r = client.get(path, query_string=qs, headers=headers)
    return r.status_code, sorted(r.headers.items()), r.get_data()


def test_the_front_answers_as_flask_does(both, signup, make_profile, make_record, make_user, master):
    front, flask_only = both
    uid, alice = signup("alice")
    pid = make_profile(alice)
    rid = make_record(alice, "Allergy", pid, substance="Peanut")
    make_record(alice, "LabResult", pid)
    doc_id, drwho = make_user("drwho", role="provider")
    ok(alice.post("/classes/SharedAccess", {"profile": pointer("Profile", pid), "grantee": pointer("_User", doc_id),
                                            "accessLevel": "read", "scope": ["allergies"]}), 201)
    who = {"alice": alice.headers(), "drwho": drwho.headers(), "master": master.headers(),
           "nobody": {"X-Parse-Application-Id": APP_ID}, "bad-key": {"X-Parse-Application-Id": "wrong"},
           "bad-token": {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": "r:nope"},
           "master-key-only": {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}}
    cases = [
        (f"/parse/classes/Allergy/{rid}", None),
        (f"/parse/classes/Allergy/{rid}", {"keys": "substance"}),
        (f"/parse/classes/Allergy/{rid}", {"include": "profile"}),
        ("/parse/classes/Allergy/doesNotExist", None),
        ("/parse/classes/Allergy", {"where": {"profile": pointer("Profile", pid)}, "limit": 5}),
        ("/parse/classes/Allergy", {"where": {"substance": {"$regex": "("}}}),
        ("/parse/classes/Allergy", {"where": "not json"}),
        ("/parse/classes/LabResult", {"count": 1, "limit": 0}),
        ("/parse/classes/NoSuchClass", None),
        (f"/parse/classes/_User/{uid}", None),
        ("/parse/classes/Profile", {"order": "-createdAt", "limit": "x"}),
    ]
    compared = 0
    for name, headers in who.items():
        for path, query in cases:
            through_front = _get(front, path, headers, query)
            through_flask = _get(flask_only, path, headers, query)
            assert through_front == through_flask, (name, path, query)
            compared += 1
    assert compared == len(who) * len(cases)
    # Not only errors: the owner's and the grantee's reads succeed through the front.
    assert _get(front, f"/parse/classes/Allergy/{rid}", who["alice"])[0] == 200
    assert _get(front, f"/parse/classes/Allergy/{rid}", who["drwho"])[0] == 200


def test_the_grantees_read_through_the_front_is_audited(signup, make_profile, make_record, make_user, db_session):
    from sqlalchemy import func, select

    from gateway.models import AuditLog

    _, alice = signup("alice")
    pid = make_profile(alice)
    rid = make_record(alice, "Allergy", pid)
    doc_id, drwho = make_user("drwho", role="provider")
    ok(alice.post("/classes/SharedAccess", {"profile": pointer("Profile", pid), "grantee": pointer("_User", doc_id),
                                            "accessLevel": "read", "scope": ["allergies"]}), 201)

    def reads() -> int:
        return db_session.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "read", AuditLog.actor_id == doc_id, AuditLog.entity_id == rid))

    before = reads()
    ok(drwho.get(f"/classes/Allergy/{rid}"))
    assert reads() == before + 1


def test_what_the_front_does_not_take_goes_to_flask(app):
    front = app.wsgi_app.downstream
    base = {"REQUEST_METHOD": "GET", "PATH_INFO": "/parse/classes/Allergy"}
    assert front.takes(base)
    assert not front.takes({**base, "REQUEST_METHOD": "POST"})
    assert not front.takes({**base, "CONTENT_LENGTH": "12"})
    assert not front.takes({**base, "HTTP_TRANSFER_ENCODING": "chunked"})
    assert not front.takes({**base, "PATH_INFO": "/parse"})  # LiveQuery's WebSocket
    assert not front.takes({**base, "PATH_INFO": "/parse/files/app/x.txt"})
    assert not front.takes({**base, "PATH_INFO": "/fhir/Patient"})
    assert not front.takes({**base, "HTTP_UPGRADE": "websocket"})
