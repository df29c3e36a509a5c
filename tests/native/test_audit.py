"""The audit trail, in exact row counts: one row per request per profile for every read by someone other
than the owner; one per write, share, revoke and login; none for the owner's reads; AuditLog itself
append-only except for the master key (DESIGN.md, 'Who may do what')."""
import pytest

from gateway.models import AuditLog
from tests.conftest import pointer
from tests.native.conftest import VALID, ok, parse_error


@pytest.fixture
def setup(signup, make_profile, make_record, provider_user, share):
    """Alice with two profiles (two allergies each) shared for allergies with a doctor."""
    uid, alice = signup("alice")
    p1, p2 = make_profile(alice, "Alice"), make_profile(alice, "Child")
    ids = [make_record(alice, "Allergy", p, substance=f"Substance{i}") for p in (p1, p2) for i in range(2)]
    dr_id, prov, dr = provider_user()
    g1 = share(alice, p1, dr_id, scope=["allergies"], level="write")
    g2 = share(alice, p2, dr_id, scope=["allergies"])
    return {"uid": uid, "alice": alice, "p1": p1, "p2": p2, "ids": ids, "dr_id": dr_id, "dr": dr,
            "grants": (g1, g2)}


def test_owner_reads_write_no_rows(setup, audit_count):
    alice = setup["alice"]
    before = audit_count()
    ok(alice.get("/classes/Allergy"))
    ok(alice.get(f"/classes/Allergy/{setup['ids'][0]}"))
    ok(alice.get("/classes/Allergy", {"include": "profile", "count": 1}))
    ok(alice.get("/classes/Profile"))
    ok(alice.post("/classes/Allergy", {"_method": "GET"}))
    assert audit_count() == before


def test_non_owner_query_writes_one_row_per_profile(setup, audit_count):
    before = audit_count(action="read")
    results = ok(setup["dr"].get("/classes/Allergy", {"include": "profile"}))["results"]
    assert len(results) == 4
    assert audit_count(action="read") == before + 2  # two profiles, one request
    assert audit_count(action="read", profile_id=setup["p1"], actor_id=setup["dr_id"]) == 1
    assert audit_count(action="read", profile_id=setup["p2"], actor_id=setup["dr_id"]) == 1


def test_non_owner_get_writes_one_row_naming_the_object(setup, audit_count, db_session):
    from sqlalchemy import select

    oid = setup["ids"][0]
    before = audit_count(action="read")
    ok(setup["dr"].get(f"/classes/Allergy/{oid}"))
    assert audit_count(action="read") == before + 1
    row = db_session.scalars(select(AuditLog).where(AuditLog.action == "read").order_by(AuditLog.created_at.desc())).first()
    assert (row.entity_type, row.entity_id, row.profile_id, row.actor_id) == ("Allergy", oid, setup["p1"], setup["dr_id"])
    assert "Substance" not in str(row.details) + row.summary  # ids and types, never health data


def test_each_request_is_counted(setup, audit_count):
    before = audit_count(action="read")
    for _ in range(3):
        ok(setup["dr"].get("/classes/Allergy", {"where": {"profile": pointer("Profile", setup["p1"])}}))
    assert audit_count(action="read") == before + 3


def test_empty_non_owner_results_write_nothing(setup, audit_count, signup):
    _, bob = signup("bob")
    before = audit_count()
    assert ok(bob.get("/classes/Allergy"))["results"] == []
    parse_error(bob.get(f"/classes/Allergy/{setup['ids'][0]}"), 101, 404)
    ok(setup["dr"].get("/classes/Medication"))
    assert audit_count() == before


def test_count_only_queries_reveal_no_records_and_write_no_rows(setup, audit_count):
    before = audit_count()
    assert ok(setup["dr"].get("/classes/Allergy", {"count": 1, "limit": 0}))["count"] == 4
    assert audit_count() == before


def test_master_reads_are_audited(setup, master, audit_count):
    before = audit_count(action="read", actor_type="master")
    ok(master.get("/classes/Allergy"))
    assert audit_count(action="read", actor_type="master") == before + 2


def test_writes_create_update_delete_each_write_one_row(setup, audit_count):
    alice, p1 = setup["alice"], setup["p1"]
    before = audit_count()
    oid = ok(alice.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", p1)}), 201)["objectId"]
    assert audit_count() == before + 1
    assert audit_count(action="create", entity_id=oid, profile_id=p1, actor_id=setup["uid"]) == 1
    ok(alice.put(f"/classes/Allergy/{oid}", {"notes": "x"}))
    assert audit_count(action="update", entity_id=oid) == 1
    ok(alice.delete(f"/classes/Allergy/{oid}"))
    assert audit_count(action="delete", entity_id=oid) == 1
    assert audit_count() == before + 3


def test_provider_writes_are_audited_as_the_provider(setup, audit_count):
    oid = setup["ids"][0]
    ok(setup["dr"].put(f"/classes/Allergy/{oid}", {"notes": "seen"}))
    assert audit_count(action="update", entity_id=oid, actor_id=setup["dr_id"], profile_id=setup["p1"]) == 1


def test_failed_writes_leave_no_row(setup, audit_count):
    alice, dr = setup["alice"], setup["dr"]
    before = audit_count()
    parse_error(alice.post("/classes/Allergy", {"substance": "x"}), 142)
    parse_error(dr.put(f"/classes/Allergy/{setup['ids'][2]}", {"notes": "x"}), 101, 404)  # read-only grant
    assert audit_count() == before


def test_share_and_revoke(setup, audit_count, signup):
    bob_id, _ = signup("bob")
    alice, p1 = setup["alice"], setup["p1"]
    before = audit_count()
    gid = ok(alice.post("/classes/SharedAccess", {"profile": pointer("Profile", p1), "grantee": pointer("_User", bob_id),
                                                  "accessLevel": "read", "scope": ["labs"]}), 201)["objectId"]
    assert audit_count(action="share", entity_id=gid, profile_id=p1) == 1
    ok(alice.put(f"/classes/SharedAccess/{gid}", {"revokedAt": {"__type": "Date", "iso": "2030-01-01T00:00:00Z"}}))
    assert audit_count(action="revoke", entity_id=gid) == 1
    g2 = setup["grants"][1]
    ok(alice.delete(f"/classes/SharedAccess/{g2}"))
    assert audit_count(action="revoke", entity_id=g2) == 1
    assert audit_count() == before + 3


def test_login_and_signup_are_audited(parse, audit_count):
    r = ok(parse.post("/users", {"username": "carol", "password": "pw"}), 201)
    assert audit_count(action="signup", actor_id=r["objectId"]) == 1
    ok(parse.get("/login", params={"username": "carol", "password": "pw"}))
    ok(parse.post("/login", {"username": "carol", "password": "pw"}))
    assert audit_count(action="login", actor_id=r["objectId"]) == 2
    parse_error(parse.get("/login", params={"username": "carol", "password": "wrong"}), 101, 404)
    assert audit_count(action="login", actor_id=r["objectId"]) == 2


def test_owner_reads_their_profiles_audit_trail(setup, signup):
    ok(setup["dr"].get("/classes/Allergy"))
    alice_sees = ok(setup["alice"].get("/classes/AuditLog", {"where": {"action": "read"}}))["results"]
    assert {r["profile"]["objectId"] for r in alice_sees} == {setup["p1"], setup["p2"]}
    assert all(r["actor"]["objectId"] == setup["dr_id"] for r in alice_sees)
    _, bob = signup("bob")
    assert ok(bob.get("/classes/AuditLog", {"where": {"profile": pointer("Profile", setup["p1"])}}))["results"] == []


def test_audit_log_is_append_only_except_for_master(setup, master, audit_count):
    alice, dr = setup["alice"], setup["dr"]
    rows = ok(alice.get("/classes/AuditLog", {"limit": 1}))["results"]
    aid = rows[0]["objectId"]
    total = audit_count()
    for client in (alice, dr):
        parse_error(client.put(f"/classes/AuditLog/{aid}", {"summary": "nothing happened"}), 101, 404)
        parse_error(client.delete(f"/classes/AuditLog/{aid}"), 101, 404)
        r = client.post("/classes/AuditLog", {"entityType": "x", "entityId": "y", "action": "read", "summary": "fake"})
        assert r.status_code == 400 and r.json["code"] == 119
    assert audit_count() == total
    assert ok(alice.get(f"/classes/AuditLog/{aid}"))["summary"] == rows[0]["summary"]
    ok(master.put(f"/classes/AuditLog/{aid}", {"summary": "amended by an administrator"}))
    assert ok(alice.get(f"/classes/AuditLog/{aid}"))["summary"] == "amended by an administrator"
    ok(master.delete(f"/classes/AuditLog/{aid}"))
    parse_error(alice.get(f"/classes/AuditLog/{aid}"), 101, 404)


def test_reading_the_audit_trail_is_not_itself_audited_for_the_owner(setup, audit_count):
    before = audit_count()
    ok(setup["alice"].get("/classes/AuditLog"))
    assert audit_count() == before
