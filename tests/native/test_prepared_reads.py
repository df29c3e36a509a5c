"""Reads run as statements compiled once and sent to the driver (gateway/services/prepared.py): the same rows
and types as SQLAlchemy's own execution, per-run values evaluated per run, and one statement per exact query
that never answers another query."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect

from gateway import access
from gateway.db import UTCDateTime
from gateway.models import LabResult, Profile, SharedAccess
from gateway.services import prepared as prepared_module
from gateway.services.prepared import Prepared, prepared
from tests.conftest import pointer
from tests.native.conftest import ok, parse_error


@pytest.fixture
def alice(signup, make_profile):
    _, a = signup("alice")
    return a, make_profile(a)


def test_rows_and_types_are_those_of_sqlalchemy(alice, make_record, db_session):
    a, pid = alice
    ok(a.post("/classes/LabResult", {"profile": pointer("Profile", pid), "testName": "HbA1c", "value": 6.1,
                                     "units": "%", "date": {"__type": "Date", "iso": "2024-03-01T08:00:00.000Z"},
                                     "ACL": {"*": {"read": True}}}), 201)
    ok(a.post("/classes/LabResult", {"profile": pointer("Profile", pid), "testName": "Note", "value": "high",
                                     "date": {"__type": "Date", "iso": "2024-03-02T08:00:00.000Z"}}), 201)
    every_column = [getattr(LabResult, a.key) for a in sa_inspect(LabResult).column_attrs]  # each type there is
    stmt = select(*every_column).where(LabResult.profile_id == bindparam("pid")).order_by(LabResult.date)
    expected = [tuple(r) for r in db_session.execute(stmt, {"pid": pid})]
    got = Prepared(stmt, db_session.get_bind().dialect).rows(db_session, {"pid": pid})
    assert [tuple(r) for r in got] == expected and len(got) == 2
    assert got[0].date.tzinfo is not None and got[0].date.utcoffset() == timedelta(0)
    assert got[0].acl == {"*": {"read": True}} and isinstance(got[0].value_number, float)
    assert got[1].value_text == "high"
    assert got[0]._fields == tuple(d["name"] for d in stmt.column_descriptions)  # attribute names


def test_per_run_values_are_evaluated_at_each_run(alice, db_session):
    """A rule's NOW is a value of the run, not of the statement: a grant that expires between two runs of
    the same prepared statement stops counting at once."""
    _, pid = alice
    clock = [datetime(2000, 1, 1, tzinfo=timezone.utc)]
    now = bindparam("now", type_=UTCDateTime(), callable_=lambda: clock[0])
    stmt = select(Profile.object_id).where(Profile.object_id == pid, Profile.created_at > now)
    p = Prepared(stmt, db_session.get_bind().dialect)
    assert [r.object_id for r in p.rows(db_session)] == [pid]
    clock[0] = datetime.now(timezone.utc) + timedelta(days=1)
    assert p.rows(db_session) == []


def test_an_expanding_in_is_expanded_once(signup, make_profile, db_session):
    _, a = signup("alice")
    ids = sorted(make_profile(a, f"P{i}") for i in range(3))
    stmt = select(Profile.object_id).where(Profile.object_id.in_([ids[0], ids[2]])).order_by(Profile.object_id)
    p = Prepared(stmt, db_session.get_bind().dialect)
    assert "POSTCOMPILE" not in p.sql
    assert [r.object_id for r in p.rows(db_session)] == [ids[0], ids[2]]
    with pytest.raises(ValueError):  # a value given per run cannot be expanded once
        Prepared(select(Profile.object_id).where(Profile.object_id.in_(bindparam("ids", expanding=True))),
                 db_session.get_bind().dialect)


def test_the_table_of_prepared_statements_is_bounded(db_session, monkeypatch):
    monkeypatch.setattr(prepared_module, "MAX_PREPARED", 3)
    monkeypatch.setattr(prepared_module, "_PREPARED", {})
    for i in range(5):
        prepared(db_session, ("test", i), lambda: select(Profile.object_id))
    assert len(prepared_module._PREPARED) == 3
    assert [k[-1] for k in prepared_module._PREPARED] == [2, 3, 4]  # the oldest went first


def test_a_read_after_a_write_in_the_same_transaction_sees_it(alice, client):
    """A transactional /batch: the GET runs on the transaction's own connection."""
    a, pid = alice
    r = ok(a.post("/batch", {"transaction": True, "requests": [
        {"method": "POST", "path": "/parse/classes/Allergy",
         "body": {"profile": pointer("Profile", pid), "substance": "Latex", "severity": "mild", "reaction": "Rash"}},
        {"method": "GET", "path": "/parse/classes/Allergy", "body": {"where": {"substance": "Latex"}}},
    ]}))
    assert [o["substance"] for o in r[1]["success"]["results"]] == ["Latex"]


def test_each_exact_query_has_its_own_statement(alice, make_record):
    a, pid = alice
    for name in ("Peanut", "Latex", "Pollen"):
        make_record(a, "Allergy", pid, substance=name)

    def names(where, **params):
        return sorted(o["substance"] for o in ok(a.get("/classes/Allergy", {"where": where, **params}))["results"])

    assert names({"substance": "Peanut"}) == ["Peanut"]
    assert names({"substance": "Latex"}) == ["Latex"]  # not the answer of the query before
    assert names({"substance": {"$in": ["Latex", "Pollen"]}}) == ["Latex", "Pollen"]
    assert names({"substance": {"$in": ["Peanut"]}}) == ["Peanut"]
    both = {"substance": {"$ne": "Latex"}, "profile": pointer("Profile", pid)}
    assert names(both) == names(dict(reversed(list(both.items())))) == ["Peanut", "Pollen"]
    assert names({}, limit=1, order="substance") == ["Latex"]
    assert names({}, limit=1, order="-substance") == ["Pollen"]
    counted = ok(a.get("/classes/Allergy", {"where": {"substance": "Latex"}, "count": 1, "limit": 0}))
    assert counted == {"results": [], "count": 1}
    counted = ok(a.get("/classes/Allergy", {"where": {"substance": "Nothing"}, "count": 1, "limit": 0}))
    assert counted == {"results": [], "count": 0}


def test_a_query_is_prepared_per_caller(signup, make_profile, make_record):
    """The same query text by two users: each gets their own rows (the access rule is in the statement)."""
    (_, a), (_, b) = signup("alice"), signup("bob")
    make_record(a, "Allergy", make_profile(a), substance="Peanut")
    make_record(b, "Allergy", make_profile(b, "Bob"), substance="Peanut")
    where = {"substance": "Peanut"}
    mine = ok(a.get("/classes/Allergy", {"where": where}))["results"]
    theirs = ok(b.get("/classes/Allergy", {"where": where}))["results"]
    assert len(mine) == len(theirs) == 1 and mine[0]["objectId"] != theirs[0]["objectId"]


def test_an_invalid_query_is_refused_every_time(alice):
    a, _ = alice
    for _ in range(2):
        parse_error(a.get("/classes/Allergy", {"where": {"substance": {"$regex": "("}}}), 102)


def test_access_rules_hold_no_expanding_in(signup):
    """Prepared statements take the rules as they are: every rule of a user and of a provider compiles
    to a statement without an expanding IN."""
    from gateway.models import Allergy

    p = access.Principal(user_id="u000000001", role="provider", provider_ids=frozenset({"v1", "v2"}))
    for model in (Allergy, Profile, SharedAccess):
        compiled = select(model.object_id).where(access.read_filter(model, p)).compile()
        assert not compiled.post_compile_params, model
