"""Objects: create (201 + Location), get, update, delete, in Parse's JSON encodings of pointers, dates,
files and ACLs; every class answers a wrong id with 101."""
import pytest

from tests.conftest import date, pointer
from tests.native.conftest import VALID, ok, parse_error

PHR_CLASSES = ["Profile", "Allergy", "Vaccination", "Medication", "LabResult", "EmergencyContact",
               "MedicalDocument", "SharedAccess", "Provider", "AuditLog", "_User", "_Session"]


def test_create_answers_201_location_and_defaults(signup, make_profile):
    uid, alice = signup("alice")
    pid = make_profile(alice)
    r = alice.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": "Peanut",
                                        "severity": "severe", "reaction": "Hives"})
    body = ok(r, 201)
    oid = body["objectId"]
    assert len(oid) == 10 and oid.isalnum()
    assert r.headers["Location"] == f"http://testserver/parse/classes/Allergy/{oid}"
    # Parse echoes the defaults it applied; nothing else.
    assert body["isActive"] is True
    assert body["recordedAt"]["__type"] == "Date"
    assert set(body) == {"objectId", "createdAt", "isActive", "recordedAt"}
    assert body["createdAt"].endswith("Z") and len(body["createdAt"]) == 24


def test_get_returns_every_field_in_parse_encodings(signup, make_profile):
    uid, alice = signup("alice")
    pid = make_profile(alice, birthDate=date("1986-04-12"))
    oid = ok(alice.post("/classes/Allergy", {
        "profile": pointer("Profile", pid), "substance": "Peanut", "severity": "severe", "reaction": "Hives",
        "onsetDate": date("1990-06-01T12:30:00.5Z"), "notes": "epi pen",
    }), 201)["objectId"]
    got = ok(alice.get(f"/classes/Allergy/{oid}"))
    assert got["profile"] == pointer("Profile", pid)
    assert got["onsetDate"] == {"__type": "Date", "iso": "1990-06-01T12:30:00.500Z"}
    assert got["ACL"] == {uid: {"read": True, "write": True}}
    assert got["createdAt"] == got["updatedAt"]
    assert got["notes"] == "epi pen" and got["isActive"] is True
    profile = ok(alice.get(f"/classes/Profile/{pid}"))
    assert profile["user"] == pointer("_User", uid)
    assert profile["birthDate"] == {"__type": "Date", "iso": "1986-04-12T00:00:00.000Z"}


def test_update_then_get(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    oid = make_record(alice, "Allergy", pid)
    before = ok(alice.get(f"/classes/Allergy/{oid}"))
    body = ok(alice.put(f"/classes/Allergy/{oid}", {"severity": "mild", "notes": "outgrown"}))
    assert set(body) == {"updatedAt"}
    after = ok(alice.get(f"/classes/Allergy/{oid}"))
    assert after["severity"] == "mild" and after["notes"] == "outgrown"
    assert after["updatedAt"] == body["updatedAt"] and after["updatedAt"] >= before["updatedAt"]
    assert after["createdAt"] == before["createdAt"]


def test_update_to_null_clears_optional_field_and_refuses_required(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    oid = make_record(alice, "Allergy", pid, notes="x")
    ok(alice.put(f"/classes/Allergy/{oid}", {"notes": None}))
    assert "notes" not in ok(alice.get(f"/classes/Allergy/{oid}"))
    parse_error(alice.put(f"/classes/Allergy/{oid}", {"substance": None}), 142)
    assert ok(alice.get(f"/classes/Allergy/{oid}"))["substance"] == "Peanut"


def test_empty_update_is_refused(signup, make_profile, make_record):
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    parse_error(alice.put(f"/classes/Allergy/{oid}", {}), 107)


@pytest.mark.parametrize("field, value", [
    ("objectId", "zzzzzzzzzz"),
    ("createdAt", date("2000-01-01")),
    ("updatedAt", date("2000-01-01")),
])
def test_server_managed_builtins_cannot_be_written(signup, make_profile, make_record, field, value):
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    r = alice.put(f"/classes/Allergy/{oid}", {field: value})
    assert r.status_code == 400 and r.json["code"] in (105, 111)
    got = ok(alice.get(f"/classes/Allergy/{oid}"))
    assert got["objectId"] == oid and not got["createdAt"].startswith("2000")


def test_created_at_as_a_string_is_a_type_error(signup, make_profile, make_record):
    # transcript: PUT createdAt "..." -> 111 schema mismatch for Allergy.createdAt; expected Date but got String
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    parse_error(alice.put(f"/classes/Allergy/{oid}", {"createdAt": "2000-01-01"}), 111)


def test_delete_then_get_update_delete_answer_101(signup, make_profile, make_record, rows):
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    assert ok(alice.delete(f"/classes/Allergy/{oid}")) == {}
    parse_error(alice.get(f"/classes/Allergy/{oid}"), 101, 404)
    parse_error(alice.put(f"/classes/Allergy/{oid}", {"notes": "x"}), 101, 404)
    parse_error(alice.delete(f"/classes/Allergy/{oid}"), 101, 404)
    assert ok(alice.get("/classes/Allergy"))["results"] == []
    assert rows("Allergy") == 1  # soft delete: the row and its history stay (FHIR answers 410)


@pytest.mark.parametrize("class_name", PHR_CLASSES)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_every_class_answers_a_wrong_id_with_101(signup, master, class_name, method):
    _, alice = signup("alice")
    for client in (alice, master):
        body = {"notes": "x"} if method == "PUT" else None
        r = client.request(method, f"/classes/{class_name}/doesNotExist", body)
        if class_name == "_User" and method != "GET" and client is alice:
            parse_error(r, 206)  # Parse: changing another user is "Insufficient auth."
            continue
        parse_error(r, 101, 404)


def test_pointer_to_wrong_class_is_111(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    aid = make_record(alice, "Allergy", pid)
    # transcript: expected Pointer<Profile> but got Pointer<Allergy>
    body = {**VALID["Allergy"], "profile": pointer("Allergy", aid)}
    err = parse_error(alice.post("/classes/Allergy", body), 111)
    assert "Pointer<Profile>" in err["error"] and "Pointer<Allergy>" in err["error"]


def test_pointer_to_missing_object_is_refused(signup, make_profile):
    _, alice = signup("alice")
    pid = make_profile(alice)
    r = alice.post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", pid),
                                          "attachment": pointer("MedicalDocument", "nOtThErE00")})
    assert r.status_code == 400 and r.json["code"] in (106, 101)


def test_record_cannot_be_moved_to_another_profile(signup, make_profile, make_record):
    _, alice = signup("alice")
    p1, p2 = make_profile(alice, "A"), make_profile(alice, "B")
    oid = make_record(alice, "Allergy", p1)
    parse_error(alice.put(f"/classes/Allergy/{oid}", {"profile": pointer("Profile", p2)}), 119)
    assert ok(alice.get(f"/classes/Allergy/{oid}"))["profile"]["objectId"] == p1


def test_profile_user_defaults_to_caller_and_cannot_be_someone_else(signup, rows):
    uid, alice = signup("alice")
    bob_id, _ = signup("bob")
    body = ok(alice.post("/classes/Profile", {"fullName": "A"}), 201)
    assert body["user"] == pointer("_User", uid)
    parse_error(alice.post("/classes/Profile", {"fullName": "B", "user": pointer("_User", bob_id)}), 119)
    assert rows("Profile") == 1


def test_shared_access_created_by_is_the_caller(signup, make_profile):
    uid, alice = signup("alice")
    bob_id, _ = signup("bob")
    pid = make_profile(alice)
    body = ok(alice.post("/classes/SharedAccess", {"profile": pointer("Profile", pid), "grantee": pointer("_User", bob_id),
                                                   "accessLevel": "read", "scope": ["allergies"]}), 201)
    assert body["createdBy"] == pointer("_User", uid)


def test_every_profile_class_round_trips(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    for class_name, fields in VALID.items():
        oid = make_record(alice, class_name, pid)
        got = ok(alice.get(f"/classes/{class_name}/{oid}"))
        for name, value in fields.items():
            assert got[name] == value, (class_name, name)


def test_lab_value_is_number_or_text(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    n = make_record(alice, "LabResult", pid, value=6.1)
    t = make_record(alice, "LabResult", pid, value="No growth")
    assert ok(alice.get(f"/classes/LabResult/{n}"))["value"] == 6.1
    assert ok(alice.get(f"/classes/LabResult/{t}"))["value"] == "No growth"
    ok(alice.put(f"/classes/LabResult/{t}", {"value": 7}))
    assert ok(alice.get(f"/classes/LabResult/{t}"))["value"] == 7


def test_class_alias_reads_the_canonical_class(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    oid = make_record(alice, "Vaccination", pid)
    assert ok(alice.get(f"/classes/Immunization/{oid}"))["vaccineName"] == "MMR"


def test_acl_is_written_and_read_in_parse_form(signup, make_profile, make_record):
    uid, alice = signup("alice")
    bob_id, _ = signup("bob")
    pid = make_profile(alice)
    acl = {uid: {"read": True, "write": True}, bob_id: {"read": True}, "role:provider": {"read": True}}
    oid = make_record(alice, "Allergy", pid, ACL=acl)
    assert ok(alice.get(f"/classes/Allergy/{oid}"))["ACL"] == acl


@pytest.mark.parametrize("acl", [
    "public",
    {"*": True},
    {"*": {"read": "yes"}},
    {"*": {"delete": True}},
    {"x" * 65: {"read": True}},
    {"a\x00b": {"read": True}},
])
def test_invalid_acl_is_123(signup, make_profile, rows, acl):
    _, alice = signup("alice")
    pid = make_profile(alice)
    parse_error(alice.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", pid), "ACL": acl}), 123)
    assert rows("Allergy") == 0


def test_every_write_keeps_the_prior_version(signup, make_profile, make_record, rows, db_session):
    """A change keeps the version it replaces, as it was served; the current version is the record's row."""
    from sqlalchemy import select

    from gateway.models import RecordVersion

    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    assert rows(RecordVersion, class_name="Allergy", object_id=oid) == 0
    served = [ok(alice.get(f"/classes/Allergy/{oid}"))]
    ok(alice.put(f"/classes/Allergy/{oid}", {"notes": "v2"}))
    served.append(ok(alice.get(f"/classes/Allergy/{oid}")))
    ok(alice.put(f"/classes/Allergy/{oid}", {"notes": "v3"}))
    served.append(ok(alice.get(f"/classes/Allergy/{oid}")))
    ok(alice.delete(f"/classes/Allergy/{oid}"))
    kept = db_session.scalars(select(RecordVersion).where(
        RecordVersion.class_name == "Allergy", RecordVersion.object_id == oid,
    ).order_by(RecordVersion.version)).all()
    assert [(v.version, v.deleted) for v in kept] == [(1, False), (2, False), (3, False)]
    for version, before in zip(kept, served):
        served = {k: v for k, v in before.items() if k != "ACL"}
        assert {k: version.data.get(k) for k in served} == served
        assert version.recorded_at.isoformat(timespec="milliseconds")[:23] == before["updatedAt"][:23]
