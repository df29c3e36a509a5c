"""A request commits only when it did something (gateway/extensions.commit): a read served by prepared
statements alone (the owner's GET, query, FHIR read and search) runs no Session.commit; a read that audits
(a grantee's), and every write, still commits. On a real engine of each kind: the suite's usual session,
bound to one connection in a transaction, always has a transaction open."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from gateway.models import AuditLog
from tests.conftest import DATABASES, Parse, app_on, fresh_database, pointer
from tests.native.conftest import ok


@pytest.fixture(scope="module", params=DATABASES)
def url(request, tmp_path_factory):
    return fresh_database(request.param, tmp_path_factory, f"request_commit_{request.param}")


@pytest.fixture
def app(url, tmp_path):
    with app_on(url, tmp_path) as app:
        yield app


@pytest.fixture
def commits(monkeypatch):
    seen: list[Session] = []

    def count(session):
        seen.append(session)

    event.listen(Session, "before_commit", count)
    yield seen
    event.remove(Session, "before_commit", count)


def user(app, name: str) -> tuple[Parse, str]:
    parse = Parse(app.test_client())
    u = ok(parse.post("/users", {"username": f"{name}{time.monotonic_ns()}", "password": "pw-123456"}), 201)
    return parse.as_user(u["sessionToken"]), u["objectId"]


@pytest.fixture
def records(app):
    alice, _ = user(app, "alice")
    pid = ok(alice.post("/classes/Profile", {"fullName": "Alice"}), 201)["objectId"]
    aid = ok(alice.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": "Peanut"}),
             201)["objectId"]
    doc, doc_id = user(app, "doc")
    ok(alice.post("/classes/SharedAccess", {"profile": pointer("Profile", pid), "grantee": pointer("_User", doc_id),
                                            "scope": ["allergies"], "accessLevel": "read"}),
       201)
    return alice, doc, doc_id, pid, aid


def reads(pid: str, aid: str) -> list[tuple[str, dict | None]]:
    return [(f"/classes/Allergy/{aid}", None), ("/classes/Allergy", {"where": {"profile": pointer("Profile", pid)}})]


def test_the_owners_reads_run_no_commit(app, records, commits):
    alice, _doc, _doc_id, pid, aid = records
    ok(alice.get(f"/classes/Allergy/{aid}"))  # the token's first use looks it up through the ORM
    commits.clear()
    for path, params in reads(pid, aid):
        ok(alice.get(path, params))
        assert commits == [], path
    fhir = app.test_client()
    auth = {"X-Parse-Session-Token": alice.token}
    for path in (f"/fhir/AllergyIntolerance/{aid}", f"/fhir/AllergyIntolerance?patient={pid}"):
        assert fhir.get(path, headers=auth).status_code == 200
        assert commits == [], path


def test_a_grantees_reads_commit_their_audit_rows(app, records, commits):
    _alice, doc, doc_id, pid, aid = records
    engine = app.extensions["phr_db"][0]

    def audited() -> int:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(AuditLog).where(
                AuditLog.action == "read", AuditLog.actor_id == doc_id, AuditLog.entity_id == aid))

    for n, (path, params) in enumerate(reads(pid, aid), start=1):
        ok(doc.get(path, params))
        assert audited() == n  # committed: seen from another session
    assert len(commits) == 2


def test_a_write_commits(app, records, commits):
    alice, _doc, _doc_id, pid, _aid = records
    ok(alice.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": "Latex"}), 201)
    assert len(commits) >= 1
