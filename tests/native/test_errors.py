"""Errors: always Parse's {code, error} with Parse's codes, never a 500, and nothing written (unknown
classes and fields, wrong types 111, missing required 142, malformed JSON, bad `where`, oversized
bodies), and a denied object answers exactly like a missing one."""
import pytest

from gateway.schema import class_spec

from gateway.models import AuditLog, RecordVersion
from tests.conftest import date, pointer
from tests.native.conftest import VALID, ok, parse_error

WRITTEN = ("Allergy", "Profile", "LabResult", "MedicalDocument", AuditLog, RecordVersion)


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("alice")
    return client, make_profile(client)


@pytest.fixture
def nothing_written(rows):
    """nothing_written() snapshots the row counts; calling the result asserts they did not change."""

    def snapshot():
        before = {m: rows(m) for m in WRITTEN}
        return lambda: {m: rows(m) for m in WRITTEN} == before

    return snapshot


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("class_name", ["NoSuchClass", "1bad", "_Role", "_Installation"])
def test_unknown_classes_are_119(alice, nothing_written, method, class_name):
    client, _ = alice
    check = nothing_written()
    path = f"/classes/{class_name}" + ("" if method in ("GET", "POST") else "/abcdefghij")
    err = parse_error(client.request(method, path, {"a": 1} if method in ("POST", "PUT") else None), 119)
    assert check()
    if method == "GET":
        assert err["error"] == f"This user is not allowed to access non-existent class: {class_name}"


@pytest.mark.parametrize("class_name", sorted(VALID))
def test_unknown_field_is_119(alice, nothing_written, class_name):
    client, pid = alice
    check = nothing_written()
    body = {**VALID[class_name], "profile": pointer("Profile", pid), "favouriteColour": "blue"}
    err = parse_error(client.post(f"/classes/{class_name}", body), 119)
    assert err["error"] == f"Permission denied for action addField on class {class_name}."
    assert check()


@pytest.mark.parametrize("class_name, field, value, got", [
    ("Allergy", "severity", 3, "Number"),
    ("Allergy", "substance", ["a"], "Array"),
    ("Allergy", "isActive", "yes", "String"),
    ("Allergy", "onsetDate", "2020-01-01", "String"),
    ("Allergy", "onsetDate", {"__type": "Pointer", "className": "Profile", "objectId": "x"}, "Pointer<Profile>"),
    ("Allergy", "profile", "abc", "String"),
    ("LabResult", "value", True, "Boolean"),
    ("LabResult", "value", {"a": 1}, "Object"),
    ("LabResult", "date", 1700000000, "Number"),
    ("Medication", "active", 1, "Number"),
    ("Vaccination", "dateAdministered", {"__type": "Date"}, "Date"),
    ("EmergencyContact", "phone", 5551234, "Number"),
])
def test_wrong_types_are_111(alice, nothing_written, class_name, field, value, got):
    client, pid = alice
    check = nothing_written()
    body = {**VALID[class_name], "profile": pointer("Profile", pid), field: value}
    err = parse_error(client.post(f"/classes/{class_name}", body), 111)
    assert err["error"].startswith(f"schema mismatch for {class_name}.{field}; expected ")
    assert check()


def test_wrong_type_on_update_is_111_and_changes_nothing(alice, make_record):
    client, pid = alice
    oid = make_record(client, "Allergy", pid)
    before = ok(client.get(f"/classes/Allergy/{oid}"))
    parse_error(client.put(f"/classes/Allergy/{oid}", {"notes": "ok", "severity": 4}), 111)
    assert ok(client.get(f"/classes/Allergy/{oid}")) == before


@pytest.mark.parametrize("class_name", sorted(VALID))
def test_missing_required_fields_are_142(alice, nothing_written, class_name):
    client, pid = alice
    check = nothing_written()
    required = [k for k in VALID[class_name] if class_spec(class_name).fields[k].required]
    assert required
    for field in required:
        body = {**VALID[class_name], "profile": pointer("Profile", pid)}
        del body[field]
        err = parse_error(client.post(f"/classes/{class_name}", body), 142)
        assert field in err["error"]
    parse_error(client.post(f"/classes/{class_name}", VALID[class_name]), 142)  # no profile
    assert check()


def test_an_allergy_without_severity_or_reaction_is_kept(alice):
    """Optional on purpose (EHR data often records no reaction); a given severity is still checked."""
    client, pid = alice
    r = client.post("/classes/Allergy", {"substance": "Latex", "profile": pointer("Profile", pid)})
    assert r.status_code == 201, r.json
    assert "severity" not in ok(client.get(f"/classes/Allergy/{r.json['objectId']}"))


@pytest.mark.parametrize("class_name, field, value", [
    ("Allergy", "severity", "extreme"),
    ("Provider", "kind", "robot"),
])
def test_values_outside_the_allowed_set_are_142(alice, master, nothing_written, class_name, field, value):
    client, pid = alice
    check = nothing_written()
    body = {**VALID.get(class_name, {"name": "x"}), field: value}
    if class_name != "Provider":
        body["profile"] = pointer("Profile", pid)
    parse_error((master if class_name == "Provider" else client).post(f"/classes/{class_name}", body), 142)
    assert check()


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2", b'{"a": }', b"\xff\xfe", b"null", b"[]", b'"text"', b"42"])
@pytest.mark.parametrize("path", ["/classes/Allergy", "/batch", "/users", "/login"])
def test_malformed_json_is_a_parse_error(alice, client, nothing_written, raw, path):
    c, _ = alice
    check = nothing_written()
    r = client.post(f"/parse{path}", data=raw, headers=c.headers(), content_type="application/json")
    parse_error(r, 107)
    assert check()


def test_malformed_json_in_the_sdk_text_plain_form(client, nothing_written):
    check = nothing_written()
    r = client.post("/parse/classes/Allergy", data=b'{"_ApplicationId": "test-app", "substance": ', content_type="text/plain")
    parse_error(r, 107)
    assert check()


@pytest.mark.parametrize("where, code", [
    ("{bad json", 107),                                   # transcript: where parameter is not valid JSON
    ('["a"]', 102),
    ('"text"', 102),
    ({"severity": {"$foo": 1}}, 102),                     # Parse answers 119 for an unsupported operator
    ({"severity": {"$in": 3}}, 107),                      # transcript: bad $in value
    ({"$and": {}}, 102),                                  # transcript: $and must be an array
    ({"$or": "x"}, 102),
    ({"$where": "sleep(1)"}, 102),
    ({"notes": {"$exists": "yes"}}, 102),
    ({"substance": {"$regex": 5}}, 102),
    ({"substance": {"$regex": "a", "$options": "z"}}, 102),
    ({"onsetDate": {"$gt": "not a date"}}, 111),
    ({"onsetDate": {"$gt": 5}}, 102),
    ({"profile": {"$inQuery": {"className": "Nope", "where": {}}}}, 102),
    ({"profile": {"$inQuery": {"className": "Allergy", "where": {}}}}, 102),
    ({"substance": {"$select": {"query": {"className": "Medication"}, "key": "nope"}}}, 102),
    ({"substance": {"$select": "x"}}, 102),
    ({"substance": {"$all": ["a"]}}, 102),
    ({"isActive": "yes"}, 102),
])
def test_bad_where_is_a_parse_error(alice, nothing_written, where, code):
    client, _ = alice
    check = nothing_written()
    parse_error(client.get("/classes/Allergy", {"where": where}), code)
    assert check()  # a failed query writes no audit row either


def test_oversized_body_is_a_parse_error_and_writes_nothing(alice, configured, nothing_written):
    client, pid = alice
    small = configured(MAX_CONTENT_LENGTH=2048)
    c = small.as_user(client.token)
    check = nothing_written()
    body = {**VALID["Allergy"], "profile": pointer("Profile", pid), "notes": "x" * 5000}
    r = c.post("/classes/Allergy", body)
    assert r.status_code == 413 and r.is_json and r.json["code"] in (116, 130) and r.json["error"]
    r = c.post("/batch", {"requests": [{"method": "POST", "path": "/parse/classes/Allergy", "body": body}]})
    assert r.status_code == 413 and r.json["code"] in (116, 130)
    assert check()
    ok(c.post("/classes/Allergy", {**body, "notes": "short"}), 201)  # below the limit all is well


def test_unknown_route_is_a_parse_error(alice):
    client, _ = alice
    r = client.get("/nosuchroute")
    assert r.status_code == 404 and r.json["code"] == 119  # Parse Server answers an HTML page here


def test_wrong_method_on_a_route_is_a_parse_error(alice):
    client, _ = alice
    r = client.put("/login", {})
    assert r.status_code == 404 and r.is_json and "code" in r.json


def test_denied_object_answers_exactly_like_a_missing_one(alice, make_record, signup):
    client, pid = alice
    oid = make_record(client, "Allergy", pid)
    _, bob = signup("bob")
    for method, body in (("GET", None), ("PUT", {"notes": "x"}), ("DELETE", None)):
        denied = bob.request(method, f"/classes/Allergy/{oid}", body)
        missing = bob.request(method, "/classes/Allergy/zzzzzzzzzz", body)
        assert (denied.status_code, denied.json) == (missing.status_code, missing.json) == \
            (404, {"code": 101, "error": "Object not found."})
    assert ok(client.get(f"/classes/Allergy/{oid}"))["substance"] == "Peanut"


def test_denied_objects_do_not_leak_through_counts(alice, make_record, signup):
    client, pid = alice
    make_record(client, "Allergy", pid)
    _, bob = signup("bob")
    assert ok(bob.get("/classes/Allergy", {"count": 1, "limit": 0})) == {"results": [], "count": 0}
    assert ok(bob.get("/classes/Allergy", {"count": 1, "where": {"substance": "Peanut"}}))["count"] == 0


def test_errors_carry_cors_headers(alice):
    client, _ = alice
    r = client.get("/classes/Allergy/zzzzzzzzzz")
    assert r.status_code == 404 and r.headers["Access-Control-Allow-Origin"] == "*"


def test_no_error_reveals_internals(alice):
    client, pid = alice
    r = client.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", pid),
                                         "onsetDate": date("not-a-date")})
    err = parse_error(r, 111)
    assert "Traceback" not in err["error"] and "sqlalchemy" not in err["error"].lower()


# ---- values PostgreSQL would refuse: caught as the caller's errors on both databases ----

@pytest.mark.parametrize("field, value", [
    ("substance", "x" * 501),                      # VARCHAR(500)
    ("substance", "a\x00b"),                        # PostgreSQL text cannot hold NUL
    ("notes", "\x00"),
])
def test_values_the_database_cannot_hold_are_142(alice, nothing_written, field, value):
    client, pid = alice
    check = nothing_written()
    parse_error(client.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", pid), field: value}), 142)
    assert check()
    ok(client.post("/classes/Allergy", {**VALID["Allergy"], "profile": pointer("Profile", pid), "substance": "x" * 500}), 201)


def test_nul_inside_json_values_is_142(alice, master, make_document, nothing_written):
    client, pid = alice
    doc, _ = make_document(client, pid)
    parse_error(client.put(f"/classes/MedicalDocument/{doc}", {"tags": ["ok", "b\x00d"]}), 142)
    parse_error(master.post("/classes/Provider", {"name": "P", "contact": {"phone\x00": "1"}}), 142)
    assert ok(client.get(f"/classes/MedicalDocument/{doc}")).get("tags") is None


@pytest.mark.parametrize("where", [
    {"substance": "a\x00b"},
    {"substance": {"$in": ["a\x00"]}},
    {"substance": {"$regex": "("}},               # invalid pattern: PostgreSQL raises, SQLite matched nothing
    {"substance": {"$regex": "[a-"}},
])
def test_queries_the_database_would_refuse_are_102(alice, where):
    client, _ = alice
    parse_error(client.get("/classes/Allergy", {"where": where}), 102)


@pytest.mark.parametrize("params", [{"skip": "100000000000000000000"}, {"limit": "100000000000000000000"},
                                    {"skip": str(2**31)}])
def test_huge_skip_or_limit_is_102(alice, params):
    client, _ = alice
    parse_error(client.get("/classes/Allergy", params), 102)


def test_large_limit_within_range_is_fine(alice):
    client, _ = alice
    assert ok(client.get("/classes/Allergy", {"limit": "1000000"})) == {"results": []}


@pytest.mark.parametrize("body, code", [
    ({"username": "u" * 151, "password": "pw"}, 200),
    ({"username": "a\x00b", "password": "pw"}, 200),
    ({"username": "ok", "password": "pw", "email": "a" * 250 + "@x.org"}, 125),
])
def test_signup_values_the_database_cannot_hold(parse, rows, body, code):
    parse_error(parse.post("/users", body), code)
    assert rows("_User") == 0


def test_login_with_nul_is_just_a_wrong_login(parse):
    parse_error(parse.post("/login", {"username": "a\x00", "password": "pw"}), 101, 404)


def test_overlong_installation_id_is_refused(parse, signup, rows):
    signup("carol", "pw")
    r = parse.post("/login", {"username": "carol", "password": "pw"}, headers={"X-Parse-Installation-Id": "x" * 65})
    parse_error(r, 107)
