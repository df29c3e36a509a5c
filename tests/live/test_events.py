"""Change events are delivered after the real commit only: never for a rolled-back transaction, never for
a rolled-back SAVEPOINT (a failed /batch operation, a refused bundle entry), and not when a SAVEPOINT is
merely released."""
from __future__ import annotations

import pytest

from gateway import events
from gateway.access import Principal
from gateway.services.objects import ObjectService
from tests.conftest import pointer
from tests.native.conftest import ok


@pytest.fixture
def heard(engine):
    got: list[events.ChangeEvent] = []
    remove = events.subscribe(got.append, engine=engine)
    yield got
    remove()


def change(oid: str) -> events.ChangeEvent:
    return events.ChangeEvent("Allergy", oid, None, "create", 1)


def test_only_the_outer_commit_delivers_and_rolled_back_savepoints_are_dropped(db_session, heard):
    db_session.connection()
    events.publish(db_session, change("outer"))
    sp = db_session.begin_nested()
    events.publish(db_session, change("released"))
    inner = db_session.begin_nested()
    events.publish(db_session, change("inner-of-rolled-back"))
    inner.commit()
    assert heard == []  # a released SAVEPOINT is not a commit
    sp.rollback()
    sp = db_session.begin_nested()
    events.publish(db_session, change("kept"))
    sp.commit()
    db_session.commit()
    assert [c.object_id for c in heard] == ["outer", "kept"]


def test_a_rolled_back_transaction_delivers_nothing(db_session, heard):
    db_session.connection()
    events.publish(db_session, change("x"))
    db_session.rollback()
    db_session.commit()
    assert heard == []


def test_an_engine_bound_listener_hears_only_its_engine(db_session, heard):
    other: list[events.ChangeEvent] = []
    remove = events.subscribe(other.append, engine=object())
    try:
        db_session.connection()
        events.publish(db_session, change("x"))
        db_session.commit()
    finally:
        remove()
    assert [c.object_id for c in heard] == ["x"] and other == []


def test_a_failed_operation_inside_a_savepoint_notifies_no_live_subscriber(socket, signup, make_profile,
                                                                          db_session):
    """What a failed /batch operation does: a record is written (and its event published) inside a
    SAVEPOINT, then the operation fails and the SAVEPOINT rolls back; the request still commits."""
    uid, alice = signup("alice")
    pid = make_profile(alice)
    ws = socket()
    ws.connect(alice.token)
    ws.subscribe(1, "Allergy")
    objects = ObjectService(db_session, Principal(user_id=uid, role="patient"))
    sp = db_session.begin_nested()
    objects.create("Allergy", {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
                               "profile": pointer("Profile", pid)})
    sp.rollback()
    sp = db_session.begin_nested()
    kept = objects.create("Allergy", {"substance": "Latex", "severity": "mild", "reaction": "Rash",
                                      "profile": pointer("Profile", pid)}).row.object_id
    sp.commit()
    db_session.commit()
    assert [(e["op"], e["object"]["objectId"]) for e in ws.events()] == [("create", kept)]


def test_a_batch_delivers_the_operations_that_succeeded_only(socket, signup, make_profile):
    _, alice = signup("alice")
    pid = make_profile(alice)
    ws = socket()
    ws.connect(alice.token)
    ws.subscribe(1, "Allergy")
    good = {"substance": "Peanut", "severity": "severe", "reaction": "Hives", "profile": pointer("Profile", pid)}
    bad = {**good, "severity": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}}
    r = ok(alice.post("/batch", {"requests": [{"method": "POST", "path": "/parse/classes/Allergy", "body": good},
                                              {"method": "POST", "path": "/parse/classes/Allergy", "body": bad}]}))
    assert "success" in r[0] and "error" in r[1]
    assert [(e["op"], e["object"]["objectId"]) for e in ws.events()] == [("create", r[0]["success"]["objectId"])]
    # all or nothing: the failing transaction delivers nothing at all
    ok(alice.post("/batch", {"transaction": True,
                             "requests": [{"method": "POST", "path": "/parse/classes/Allergy", "body": good},
                                          {"method": "POST", "path": "/parse/classes/Allergy", "body": bad}]}), 400)
    assert ws.events() == []
