"""/batch: sub-paths with or without the mount path, one result per operation, `transaction: true` all or
nothing (transcript rest[] POST /batch; sdk[] id 11 'saveAll (uses /batch)')."""
import pytest
from sqlalchemy import select

from gateway.models import AuditLog, RecordVersion
from tests.conftest import pointer
from tests.fhir.conftest import Fhir
from tests.native.conftest import VALID, ok, parse_error


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("alice")
    return client, make_profile(client)


def allergy(pid, **fields):
    return {**VALID["Allergy"], "profile": pointer("Profile", pid), **fields}


@pytest.mark.parametrize("prefix", ["/parse", "parse", ""])
def test_sub_paths_with_or_without_mount_path(alice, prefix):
    client, pid = alice
    results = ok(client.post("/batch", {"requests": [
        {"method": "POST", "path": f"{prefix}/classes/Allergy", "body": allergy(pid, substance="Kiwi")},
    ]}))
    assert len(results) == 1
    oid = results[0]["success"]["objectId"]
    assert ok(client.get(f"/classes/Allergy/{oid}"))["substance"] == "Kiwi"


def test_each_operation_gets_its_own_result(alice, make_record):
    client, pid = alice
    existing = make_record(client, "Allergy", pid)
    to_delete = make_record(client, "Allergy", pid, substance="Egg")
    results = ok(client.post("/batch", {"requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance="Soy")},
        {"method": "PUT", "path": f"/parse/classes/Allergy/{existing}", "body": {"severity": "mild"}},
        {"method": "DELETE", "path": f"/parse/classes/Allergy/{to_delete}"},
        {"method": "PUT", "path": "/parse/classes/Allergy/doesNotExist", "body": {"severity": "mild"}},
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, severity="extreme")},
        {"method": "GET", "path": f"/parse/classes/Allergy/{existing}"},
        {"method": "GET", "path": "/parse/classes/Allergy", "body": {"where": {"substance": "Soy"}}},
    ]}))
    assert len(results) == 7
    assert set(results[0]["success"]) >= {"objectId", "createdAt"}
    assert set(results[1]["success"]) == {"updatedAt"}
    assert results[2] == {"success": {}}
    assert results[3] == {"error": {"code": 101, "error": "Object not found."}}
    assert results[4]["error"]["code"] == 142
    assert results[5]["success"]["severity"] == "mild"
    assert [o["substance"] for o in results[6]["success"]["results"]] == ["Soy"]
    # Successful operations stay even though others failed.
    subs = {o["substance"] for o in ok(client.get("/classes/Allergy"))["results"]}
    assert subs == {"Peanut", "Soy"}


def test_transaction_commits_all_when_all_succeed(alice, make_record):
    client, pid = alice
    existing = make_record(client, "Allergy", pid)
    results = ok(client.post("/batch", {"transaction": True, "requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance="A")},
        {"method": "PUT", "path": f"/parse/classes/Allergy/{existing}", "body": {"notes": "tx"}},
    ]}))
    assert [list(r) for r in results] == [["success"], ["success"]]
    assert ok(client.get(f"/classes/Allergy/{existing}"))["notes"] == "tx"


@pytest.mark.parametrize("bad", [
    {"method": "POST", "path": "/parse/classes/Allergy", "body": {"substance": "no profile"}},        # 142
    {"method": "POST", "path": "/parse/classes/Allergy", "body": {"severity": 3}},                   # 111
    {"method": "PUT", "path": "/parse/classes/Allergy/doesNotExist", "body": {"notes": "x"}},        # 101
    {"method": "POST", "path": "/parse/classes/NoSuchClass", "body": {"a": 1}},                      # 119
    {"method": "PATCH", "path": "/parse/classes/Allergy", "body": {}},                               # 107
])
def test_transaction_is_all_or_nothing(alice, make_record, rows, bad):
    client, pid = alice
    existing = make_record(client, "Allergy", pid)
    before = {m: rows(m) for m in ("Allergy", AuditLog, RecordVersion)}
    r = client.post("/batch", {"transaction": True, "requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance="t1")},
        {"method": "PUT", "path": f"/parse/classes/Allergy/{existing}", "body": {"notes": "changed"}},
        bad,
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance="t2")},
    ]})
    # Parse Server answers 500 here (transcript); we answer the failing operation's error.
    assert r.status_code in (400, 404) and isinstance(r.json["code"], int) and r.json["code"] != 1
    assert {m: rows(m) for m in before} == before
    got = ok(client.get(f"/classes/Allergy/{existing}"))
    assert "notes" not in got
    assert [o["substance"] for o in ok(client.get("/classes/Allergy"))["results"]] == ["Peanut"]


@pytest.mark.parametrize("body", [{"requests": {}}, {}, {"requests": "x"}])
def test_a_batch_without_a_requests_array_is_107(alice, body):
    client, _ = alice
    parse_error(client.post("/batch", body), 107)


@pytest.mark.parametrize("op", [
    "not an object",
    {"method": "POST"},
    {"path": "/parse/classes/Allergy"},
    {"method": "POST", "path": "/parse/classes/Allergy", "body": "text"},
])
def test_a_malformed_operation_fails_alone(alice, rows, op):
    client, pid = alice
    results = ok(client.post("/batch", {"requests": [
        op, {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid)}]}))
    assert results[0]["error"]["code"] == 107
    assert "success" in results[1]
    assert rows("Allergy") == 1


@pytest.mark.parametrize("path", ["/parse/batch", "/parse/login", "/parse/logout", "/parse/files/x.txt"])
def test_batch_cannot_route_to_batch_login_or_files(alice, path):
    client, _ = alice
    (res,) = ok(client.post("/batch", {"requests": [{"method": "POST", "path": path, "body": {}}]}))
    assert res["error"]["code"] == 107


def test_batch_runs_as_the_caller(alice, signup):
    client, pid = alice
    _, bob = signup("bob")
    results = ok(bob.post("/batch", {"requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid)},
        {"method": "GET", "path": "/parse/classes/Allergy"},
    ]}))
    assert results[0]["error"]["code"] == 119
    assert results[1] == {"success": {"results": []}}
    assert ok(client.get("/classes/Allergy"))["results"] == []


def test_anonymous_batch_writes_nothing(parse, alice, rows):
    _, pid = alice
    r = parse.post("/batch", {"requests": [{"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid)}]})
    (res,) = ok(r)
    assert res["error"]["code"] == 101
    assert rows("Allergy") == 0


def test_master_batch_deletes(alice, make_record, master):
    # transcript: the master key's clean-up batches of DELETEs answer [{"success": {}}, ...]
    client, pid = alice
    ids = [make_record(client, "Allergy", pid, substance=s) for s in ("a", "b")]
    results = ok(master.post("/batch", {"requests": [
        {"method": "DELETE", "path": f"/parse/classes/Allergy/{i}"} for i in ids]}))
    assert results == [{"success": {}}, {"success": {}}]
    assert ok(client.get("/classes/Allergy"))["results"] == []


def test_a_transaction_is_audited_as_one_interaction_and_a_plain_batch_per_operation(alice, make_record,
                                                                                       db_session, rows):
    """As a FHIR transaction is (gateway/audit.py group_writes): one row per action and profile, naming every
    record; a lone write of its kind is the row a single write makes. A batch without `transaction` is
    several interactions: a row per operation."""
    client, pid = alice
    existing = make_record(client, "Allergy", pid)
    before = rows(AuditLog)
    results = ok(client.post("/batch", {"transaction": True, "requests": [
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance=s)} for s in "ABC"
    ] + [{"method": "PUT", "path": f"/parse/classes/Allergy/{existing}", "body": {"notes": "tx"}}]}))
    created = [r["success"]["objectId"] for r in results[:3]]
    assert rows(AuditLog) == before + 2
    db_session.expire_all()
    grouped = db_session.scalars(select(AuditLog).where(
        AuditLog.action == "create", AuditLog.profile_id == pid, AuditLog.entity_id == created[0])).one()
    assert grouped.details["via"] == "native" and grouped.details["interaction"] == "transaction"
    assert grouped.details["entities"] == {"Allergy": created}
    assert grouped.summary.endswith("create 3 records (transaction)")
    update = db_session.scalars(select(AuditLog).where(AuditLog.action == "update",
                                                       AuditLog.entity_id == existing)).one()
    assert not (update.details or {}).get("entities")
    # the FHIR face finds the one event by each record it wrote
    fhir = Fhir(client.client, client.token)
    for oid in created:
        found = fhir.search("AuditEvent", {"entity": f"AllergyIntolerance/{oid}"})
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [grouped.object_id]
    plain = [{"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid, substance=s)}
             for s in "DE"]
    ok(client.post("/batch", {"requests": plain}))
    assert rows(AuditLog) == before + 4
