"""The write buffer (gateway/services/write_buffer.py): rows wait for the end of the scope, yet every read
through the Session sees them; an error or a rolled-back SAVEPOINT drops exactly what it should; and what
the scope remembers about profiles is forgotten when a profile is written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.access import Principal
from gateway.errors import Forbidden
from gateway.models import FhirIndex
from gateway.services import write_buffer
from gateway.services.objects import ObjectService
from tests.conftest import pointer


def index_row(value: str) -> dict:
    row = dict.fromkeys(("system", "norm", "low", "high", "number", "target_type", "target_id"))
    return {**row, "resource_type": "Observation", "resource_id": "buffered01", "param": "code", "value": value}


def stored(connection) -> list[str]:
    """What the database holds, read on the connection itself (past the Session and its buffer)."""
    return sorted(connection.execute(select(FhirIndex.value).where(FhirIndex.resource_id == "buffered01")).scalars())


def test_rows_are_sent_at_the_end_of_the_scope_or_before_a_read(db_session, connection):
    with write_buffer.scope(db_session) as buffer:
        buffer.insert(FhirIndex.__table__, [index_row("a"), index_row("b")])
        assert stored(connection) == []  # not sent yet
        seen = db_session.scalar(select(func.count()).select_from(FhirIndex).where(FhirIndex.resource_id == "buffered01"))
        assert seen == 2  # a read through the Session sends them first
        buffer.insert(FhirIndex.__table__, [index_row("c")])
        assert stored(connection) == ["a", "b"]
    assert stored(connection) == ["a", "b", "c"]


def test_an_error_drops_what_the_scope_holds(db_session, connection):
    with pytest.raises(RuntimeError), write_buffer.scope(db_session) as buffer:
        buffer.insert(FhirIndex.__table__, [index_row("a")])
        raise RuntimeError("refused")
    assert write_buffer.current(db_session) is None
    db_session.flush()
    assert stored(connection) == []


def test_a_rolled_back_savepoint_keeps_the_rows_made_before_it(db_session, connection):
    with write_buffer.scope(db_session) as buffer:
        buffer.insert(FhirIndex.__table__, [index_row("before")])
        savepoint = db_session.begin_nested()
        buffer.insert(FhirIndex.__table__, [index_row("inside, unsent")])
        savepoint.rollback()
        savepoint = db_session.begin_nested()
        buffer.insert(FhirIndex.__table__, [index_row("inside, sent")])
        db_session.execute(select(FhirIndex.pk).limit(1))
        savepoint.rollback()
        savepoint = db_session.begin_nested()
        buffer.insert(FhirIndex.__table__, [index_row("inside, released")])
        savepoint.commit()
        buffer.insert(FhirIndex.__table__, [index_row("after")])
    assert stored(connection) == ["after", "before", "inside, released"]


def test_tables_with_foreign_keys_go_as_objects(db_session):
    from gateway.models import AuditLog

    with pytest.raises(ValueError), write_buffer.scope(db_session) as buffer:
        buffer.insert(AuditLog.__table__, [{"object_id": "x"}])


def test_a_profile_deleted_in_the_scope_is_not_remembered_as_existing(db_session, signup, make_profile):
    """The scope remembers that a profile exists and that its owner may write there; deleting the profile
    must make the next write fail as it would without the memo."""
    uid, alice = signup("alice")
    pid = make_profile(alice)
    objects = ObjectService(db_session, Principal(user_id=uid, role="patient"))
    allergy = {"substance": "Peanut", "severity": "severe", "reaction": "Hives", "profile": pointer("Profile", pid)}
    with write_buffer.scope(db_session) as buffer:
        objects.create("Allergy", dict(allergy))
        assert buffer.memo  # remembered: the profile exists, alice may create there, its owner
        objects.delete("Profile", pid)
        with pytest.raises(Forbidden):
            objects.create("Allergy", dict(allergy))


def test_records_of_a_profile_created_in_the_same_scope_are_written_after_it(db_session, signup):
    """One flush orders INSERTs by class name (allergy before profile): the buffer flushes the pending
    profile before a record pointing to it is added, so PostgreSQL's foreign keys hold."""
    uid, _alice = signup("alice")
    objects = ObjectService(db_session, Principal(user_id=uid, role="patient"))
    with write_buffer.scope(db_session):
        pid = objects.create("Profile", {"fullName": "Alice Example"}).row.object_id
        for substance in ("Peanut", "Latex"):
            objects.create("Allergy", {"substance": substance, "severity": "mild", "reaction": "Rash",
                                       "profile": pointer("Profile", pid)})
    db_session.flush()
    from gateway.models import Allergy, AuditLog

    assert db_session.scalar(select(func.count()).select_from(Allergy).where(Allergy.profile_id == pid)) == 2
    assert db_session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.profile_id == pid)) == 3


def test_a_new_object_is_what_the_constructor_makes_without_its_events(db_session):
    from sqlalchemy import inspect

    from gateway.models import Allergy
    from gateway.services import plain_rows

    values = dict(object_id="newobject1", substance="Peanuts", profile_id="p000000001", version=1)
    made = write_buffer.new_object(Allergy, **values)
    constructed = Allergy(**values)
    assert inspect(made).transient and made not in db_session
    assert plain_rows.columns_of(made) == plain_rows.columns_of(constructed)  # defaults for what is unset
    assert made.substance == "Peanuts" and made.deleted_at is None
    with pytest.raises(TypeError, match="no column attribute"):
        write_buffer.new_object(Allergy, object_id="x", colour="red")
