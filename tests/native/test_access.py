"""The access policy (gateway/access.py) as the native API applies it: owner; a second user; a provider
user with a SharedAccess by scope, level, expiry and revocation; ACL entries ("*", a user id, role:);
the master key; anonymous callers. Denied reads look like missing objects (101) and empty queries."""
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import pointer
from tests.native.conftest import SCOPE, VALID, ok, parse_error

PROFILE_CLASSES = sorted(VALID)  # Allergy, EmergencyContact, LabResult, Medication, Vaccination


def iso_in(seconds: float) -> dict:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return {"__type": "Date", "iso": when.isoformat().replace("+00:00", "Z")}


@pytest.fixture
def record(signup, make_profile, make_record):
    """Alice's profile with one record of every profile class."""
    uid, alice = signup("alice")
    pid = make_profile(alice, "Alice")
    ids = {c: make_record(alice, c, pid) for c in PROFILE_CLASSES}
    return {"uid": uid, "alice": alice, "pid": pid, "ids": ids}


@pytest.fixture
def doctor(provider_user):
    uid, prov, client = provider_user("dr.who")
    return {"uid": uid, "provider": prov, "client": client}


def visible(client, class_name) -> list[str]:
    return [o["objectId"] for o in ok(client.get(f"/classes/{class_name}"))["results"]]


# ---- owner and second user ----

def test_owner_reads_and_writes_everything(record):
    alice = record["alice"]
    for c, oid in record["ids"].items():
        assert visible(alice, c) == [oid]
        ok(alice.put(f"/classes/{c}/{oid}", {"notes": "x"} if c in ("Allergy", "EmergencyContact") else
                     {"profile": pointer("Profile", record["pid"])}))
        ok(alice.delete(f"/classes/{c}/{oid}"))


@pytest.mark.parametrize("class_name", PROFILE_CLASSES + ["Profile"])
def test_second_user_sees_and_changes_nothing(record, signup, class_name):
    _, bob = signup("bob")
    oid = record["pid"] if class_name == "Profile" else record["ids"][class_name]
    assert visible(bob, class_name) == []
    assert ok(bob.get(f"/classes/{class_name}", {"count": 1, "limit": 0}))["count"] == 0
    parse_error(bob.get(f"/classes/{class_name}/{oid}"), 101, 404)
    parse_error(bob.put(f"/classes/{class_name}/{oid}", {"notes": "hacked"}), 101, 404)
    parse_error(bob.delete(f"/classes/{class_name}/{oid}"), 101, 404)
    ok(record["alice"].get(f"/classes/{class_name}/{oid}"))


@pytest.mark.parametrize("class_name", PROFILE_CLASSES)
def test_second_user_cannot_add_records_to_someone_elses_profile(record, signup, rows, class_name):
    _, bob = signup("bob")
    before = rows(class_name)
    parse_error(bob.post(f"/classes/{class_name}", {**VALID[class_name], "profile": pointer("Profile", record["pid"])}), 119)
    assert rows(class_name) == before


def test_second_user_cannot_share_someone_elses_profile(record, signup, rows):
    bob_id, bob = signup("bob")
    r = bob.post("/classes/SharedAccess", {"profile": pointer("Profile", record["pid"]), "grantee": pointer("_User", bob_id),
                                           "accessLevel": "write", "scope": ["allergies"]})
    parse_error(r, 119)
    assert rows("SharedAccess") == 0


# ---- a provider user with a SharedAccess ----

@pytest.mark.parametrize("via", ["grantee", "provider"])
def test_provider_read_grant_for_allergies_sees_allergies_only(record, doctor, share, via):
    kw = {"grantee": doctor["uid"]} if via == "grantee" else {"provider": pointer("Provider", doctor["provider"])}
    share(record["alice"], record["pid"], kw.get("grantee"), scope=["allergies"],
          **({} if via == "grantee" else {"provider": kw["provider"]}))
    dr = doctor["client"]
    assert visible(dr, "Allergy") == [record["ids"]["Allergy"]]
    ok(dr.get(f"/classes/Allergy/{record['ids']['Allergy']}"))
    for c in PROFILE_CLASSES:
        if c != "Allergy":
            assert visible(dr, c) == []
            parse_error(dr.get(f"/classes/{c}/{record['ids'][c]}"), 101, 404)
    assert visible(dr, "Profile") == [record["pid"]]  # the grantee always sees the Patient


def test_read_grant_cannot_change_anything(record, doctor, share, rows):
    share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"])
    dr, aid = doctor["client"], record["ids"]["Allergy"]
    parse_error(dr.put(f"/classes/Allergy/{aid}", {"severity": "mild"}), 101, 404)
    parse_error(dr.delete(f"/classes/Allergy/{aid}"), 101, 404)
    parse_error(dr.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", record["pid"])}), 119)
    parse_error(dr.put(f"/classes/Profile/{record['pid']}", {"fullName": "X"}), 101, 404)
    assert ok(record["alice"].get(f"/classes/Allergy/{aid}"))["severity"] == "severe"
    assert rows("Allergy") == 1


def test_write_grant_creates_and_updates_in_scope_but_never_deletes(record, doctor, share):
    share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"], level="write")
    dr, aid = doctor["client"], record["ids"]["Allergy"]
    ok(dr.put(f"/classes/Allergy/{aid}", {"severity": "mild"}))
    new = ok(dr.post("/classes/Allergy", {**VALID["Allergy"], "substance": "Latex",
                                          "profile": pointer("Profile", record["pid"])}), 201)["objectId"]
    parse_error(dr.delete(f"/classes/Allergy/{aid}"), 101, 404)
    parse_error(dr.put(f"/classes/Medication/{record['ids']['Medication']}", {"dose": "1"}), 101, 404)
    parse_error(dr.post("/classes/Medication", {**VALID["Medication"], "profile": pointer("Profile", record["pid"])}), 119)
    # what the provider wrote belongs to the patient (owner-only ACL naming the profile's owner)
    assert ok(record["alice"].get(f"/classes/Allergy/{new}"))["ACL"] == {record["uid"]: {"read": True, "write": True}}


def test_write_grant_holder_cannot_set_acls(record, doctor, share):
    share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"], level="write")
    dr, aid = doctor["client"], record["ids"]["Allergy"]
    parse_error(dr.put(f"/classes/Allergy/{aid}", {"ACL": {"*": {"read": True, "write": True}}}), 119)
    r = dr.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", record["pid"]),
                                     "ACL": {doctor["uid"]: {"read": True, "write": True}}})
    parse_error(r, 119)


def test_grant_ending_ends_access_to_what_the_provider_wrote(record, doctor, share):
    grant = share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"], level="write")
    dr = doctor["client"]
    new = ok(dr.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", record["pid"])}), 201)["objectId"]
    ok(record["alice"].put(f"/classes/SharedAccess/{grant}", {"revokedAt": iso_in(-1)}))
    parse_error(dr.get(f"/classes/Allergy/{new}"), 101, 404)


def test_expired_grant_gives_nothing(record, doctor, share):
    share(record["alice"], record["pid"], doctor["uid"], scope=list(SCOPE.values()), expiresAt=iso_in(-60))
    dr = doctor["client"]
    for c in PROFILE_CLASSES + ["Profile"]:
        assert visible(dr, c) == []


def test_grant_stops_the_moment_it_expires(record, doctor, share):
    grant = share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"], expiresAt=iso_in(3600))
    dr = doctor["client"]
    assert len(visible(dr, "Allergy")) == 1
    ok(record["alice"].put(f"/classes/SharedAccess/{grant}", {"expiresAt": iso_in(-1)}))
    assert visible(dr, "Allergy") == []
    parse_error(dr.get(f"/classes/Allergy/{record['ids']['Allergy']}"), 101, 404)


def test_revoked_grant_gives_nothing(record, doctor, share):
    grant = share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"])
    dr = doctor["client"]
    assert len(visible(dr, "Allergy")) == 1
    ok(record["alice"].put(f"/classes/SharedAccess/{grant}", {"revokedAt": iso_in(0)}))
    assert visible(dr, "Allergy") == [] and visible(dr, "Profile") == []


def test_deleted_grant_gives_nothing(record, doctor, share):
    grant = share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"])
    ok(record["alice"].delete(f"/classes/SharedAccess/{grant}"))
    assert visible(doctor["client"], "Allergy") == []


@pytest.mark.parametrize("class_name", PROFILE_CLASSES)
def test_wrong_scope_gives_nothing(record, doctor, share, class_name):
    others = [s for c, s in SCOPE.items() if c != class_name]
    share(record["alice"], record["pid"], doctor["uid"], scope=others)
    dr = doctor["client"]
    assert visible(dr, class_name) == []
    parse_error(dr.get(f"/classes/{class_name}/{record['ids'][class_name]}"), 101, 404)
    assert visible(dr, "Profile") == [record["pid"]]


def test_grant_for_one_profile_does_not_reach_another(record, doctor, share, make_profile, make_record):
    alice = record["alice"]
    other = make_profile(alice, "Child")
    make_record(alice, "Allergy", other, substance="Egg")
    share(alice, record["pid"], doctor["uid"], scope=["allergies"])
    dr = doctor["client"]
    assert visible(dr, "Allergy") == [record["ids"]["Allergy"]]
    assert visible(dr, "Profile") == [record["pid"]]


def test_grantee_and_owner_read_the_grant_others_do_not(record, doctor, share, signup):
    grant = share(record["alice"], record["pid"], doctor["uid"], scope=["allergies"])
    _, bob = signup("bob")
    assert visible(record["alice"], "SharedAccess") == [grant]
    assert visible(doctor["client"], "SharedAccess") == [grant]
    assert visible(bob, "SharedAccess") == []
    # only the owner changes or revokes it
    parse_error(doctor["client"].put(f"/classes/SharedAccess/{grant}", {"accessLevel": "write"}), 101, 404)


# ---- ACL entries ----

@pytest.fixture
def acl_case(record, signup, make_record):
    bob_id, bob = signup("bob")
    return record, bob_id, bob


@pytest.mark.parametrize("entry", ["user", "*", "role:patient"])
def test_acl_read_entry_adds_read_access(acl_case, make_record, entry):
    record, bob_id, bob = acl_case
    principal = bob_id if entry == "user" else entry
    acl = {record["uid"]: {"read": True, "write": True}, principal: {"read": True}}
    oid = make_record(record["alice"], "Medication", record["pid"], name="Shared med", ACL=acl)
    assert visible(bob, "Medication") == [oid]
    assert ok(bob.get(f"/classes/Medication/{oid}"))["name"] == "Shared med"
    parse_error(bob.put(f"/classes/Medication/{oid}", {"dose": "2"}), 101, 404)
    parse_error(bob.get(f"/classes/Medication/{record['ids']['Medication']}"), 101, 404)  # others stay private


def test_role_acl_entry_matches_the_users_phr_role(acl_case, make_record, doctor):
    record, bob_id, bob = acl_case
    acl = {record["uid"]: {"read": True, "write": True}, "role:provider": {"read": True}}
    oid = make_record(record["alice"], "Medication", record["pid"], ACL=acl)
    assert visible(doctor["client"], "Medication") == [oid]
    assert visible(bob, "Medication") == []  # bob is a patient


def test_acl_write_entry_adds_write_access(acl_case, make_record):
    record, bob_id, bob = acl_case
    acl = {record["uid"]: {"read": True, "write": True}, bob_id: {"read": True, "write": True}}
    oid = make_record(record["alice"], "Medication", record["pid"], ACL=acl)
    ok(bob.put(f"/classes/Medication/{oid}", {"dose": "2 mg"}))
    assert ok(record["alice"].get(f"/classes/Medication/{oid}"))["dose"] == "2 mg"
    parse_error(bob.put(f"/classes/Medication/{oid}", {"ACL": {bob_id: {"read": True, "write": True}}}), 119)


def test_public_acl_does_not_open_to_anonymous(acl_case, make_record, parse):
    record, _, _ = acl_case
    acl = {record["uid"]: {"read": True, "write": True}, "*": {"read": True}}
    oid = make_record(record["alice"], "Medication", record["pid"], ACL=acl)
    # Every class requires authentication (README): "*" means every signed-in user.
    parse_error(parse.get(f"/classes/Medication/{oid}"), 101, 404)


def test_owner_can_narrow_an_acl_back(acl_case, make_record):
    record, bob_id, bob = acl_case
    oid = make_record(record["alice"], "Medication", record["pid"],
                      ACL={record["uid"]: {"read": True, "write": True}, bob_id: {"read": True}})
    ok(record["alice"].put(f"/classes/Medication/{oid}", {"ACL": {record["uid"]: {"read": True, "write": True}}}))
    assert visible(bob, "Medication") == []


def test_owner_access_does_not_depend_on_the_acl(record, make_record):
    # The owner of the profile reads and writes everything of it, whatever the ACL says.
    oid = make_record(record["alice"], "Medication", record["pid"], ACL={})
    assert oid in visible(record["alice"], "Medication")
    ok(record["alice"].put(f"/classes/Medication/{oid}", {"dose": "3"}))


# ---- master key and anonymous ----

def test_master_key_reads_and_writes_everything(record, master, signup):
    signup("bob")
    for c, oid in record["ids"].items():
        assert visible(master, c) == [oid]
        ok(master.put(f"/classes/{c}/{oid}", {"profile": pointer("Profile", record["pid"])}))
    assert len(visible(master, "_User")) == 2
    ok(master.delete(f"/classes/Allergy/{record['ids']['Allergy']}"))


def test_providers_are_a_directory_for_signed_in_users(doctor, signup, parse):
    _, bob = signup("bob")
    assert visible(bob, "Provider") == [doctor["provider"]]
    parse_error(parse.get("/classes/Provider"), 101, 404)
    parse_error(bob.put(f"/classes/Provider/{doctor['provider']}", {"name": "x"}), 101, 404)
    ok(doctor["client"].put(f"/classes/Provider/{doctor['provider']}", {"systemId": "123"}))  # its own entry


PROTECTED = [
    ("GET", "/classes/Allergy", None, 101, 404),
    ("GET", "/classes/Allergy/abcdefghij", None, 101, 404),
    ("POST", "/classes/Allergy", {"substance": "x"}, 101, 404),
    ("PUT", "/classes/Allergy/abcdefghij", {"substance": "x"}, 101, 404),
    ("DELETE", "/classes/Allergy/abcdefghij", None, 101, 404),
    ("GET", "/classes/Profile", None, 101, 404),
    ("POST", "/classes/Profile", {"fullName": "x"}, 101, 404),
    ("GET", "/classes/AuditLog", None, 101, 404),
    ("GET", "/classes/SharedAccess", None, 101, 404),
    ("GET", "/users/me", None, 209, 400),
    ("GET", "/sessions", None, 209, 400),
    ("GET", "/sessions/me", None, 209, 400),
    ("POST", "/files/a.txt", {"base64": "eA=="}, 130, 400),
]


@pytest.mark.parametrize("method, path, body, code, status", PROTECTED)
def test_every_protected_route_refuses_no_token(parse, rows, method, path, body, code, status):
    before = rows("Profile"), rows("Allergy")
    parse_error(parse.request(method, path, body), code, status)
    assert (rows("Profile"), rows("Allergy")) == before


@pytest.mark.parametrize("method, path, body, code, status", PROTECTED)
def test_every_protected_route_refuses_an_invalid_token(parse, method, path, body, code, status):
    parse_error(parse.as_user("r:" + "0" * 32).request(method, path, body), 209)


@pytest.mark.parametrize("path", ["/schemas", "/schemas/Allergy", "/serverInfo"])
def test_master_only_routes_refuse_no_token(parse, path):
    r = parse.get(path)
    assert r.status_code == 403 and "unauthorized" in r.json["error"]


def test_wrong_master_key_is_refused(parse, rows):
    r = parse.get("/classes/Allergy", headers={"X-Parse-Master-Key": "not-the-key"})
    assert r.status_code == 403 and r.json == {"error": "unauthorized"}
