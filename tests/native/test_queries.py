"""Queries: every `where` operator, order, limit (default 100), skip, count, keys, excludeKeys, and the
SDK's POST with `_method: GET` (transcript rest[] GET /classes/Allergy with where, sdk[] ids 12-19)."""
import pytest

from tests.conftest import date, pointer
from tests.native.conftest import ok, parse_error

ALLERGIES = [
    # substance, severity, reaction, notes, onsetDate
    ("Peanut", "severe", "Anaphylaxis", "epi pen", "2010-01-10"),
    ("penicillin", "moderate", "Hives", None, "2015-05-05"),
    ("Milk", "mild", "Rash", None, "2020-06-01"),
    ("Pollen", "mild", "Sneezing", "spring", None),
    ("Shellfish", "severe", "Swelling", None, "2023-03-03"),
]


@pytest.fixture
def world(signup, make_profile, make_record):
    """Alice with two profiles: five allergies on 'Alice', one on 'Child'; a few labs and medications."""
    uid, alice = signup("alice")
    main = make_profile(alice, "Alice")
    child = make_profile(alice, "Child")
    ids = {}
    for substance, severity, reaction, notes, onset in ALLERGIES:
        extra = {"notes": notes} if notes else {}
        if onset:
            extra["onsetDate"] = date(onset)
        ids[substance] = make_record(alice, "Allergy", main, substance=substance, severity=severity,
                                     reaction=reaction, **extra)
    ids["Egg"] = make_record(alice, "Allergy", child, substance="Egg", severity="mild", reaction="Rash")
    return {"uid": uid, "alice": alice, "main": main, "child": child, "ids": ids}


def names(r) -> list[str]:
    return [o["substance"] for o in ok(r)["results"]]


def q(world, where=None, **params):
    if where is not None:
        params["where"] = where
    return world["alice"].get("/classes/Allergy", params=params)


@pytest.mark.parametrize("where, expected", [
    ({"substance": "Milk"}, {"Milk"}),
    ({"substance": {"$eq": "Milk"}}, {"Milk"}),
    ({"severity": {"$ne": "mild"}}, {"Peanut", "penicillin", "Shellfish"}),
    ({"notes": {"$ne": "spring"}}, {"Peanut", "penicillin", "Milk", "Shellfish", "Egg"}),  # $ne matches unset
    ({"substance": {"$in": ["Milk", "Egg", "Kiwi"]}}, {"Milk", "Egg"}),
    ({"substance": {"$nin": ["Milk", "Egg"]}}, {"Peanut", "penicillin", "Pollen", "Shellfish"}),
    ({"notes": {"$exists": True}}, {"Peanut", "Pollen"}),
    ({"notes": {"$exists": False}}, {"penicillin", "Milk", "Shellfish", "Egg"}),
    ({"substance": {"$regex": "^P"}}, {"Peanut", "Pollen"}),
    ({"substance": {"$regex": "^p", "$options": "i"}}, {"Peanut", "penicillin", "Pollen"}),
    ({"substance": {"$regex": "ILK$", "$options": "i"}}, {"Milk"}),
    ({"substance": {"$gt": "Pa", "$lt": "Q"}}, {"Peanut", "Pollen"}),
    ({"substance": {"$gte": "Peanut", "$lte": "Pollen"}}, {"Peanut", "Pollen"}),
    ({"onsetDate": {"$lt": date("2015-05-05")}}, {"Peanut"}),
    ({"onsetDate": {"$lte": date("2015-05-05")}}, {"Peanut", "penicillin"}),
    ({"onsetDate": {"$gt": date("2020-06-01")}}, {"Shellfish"}),
    ({"onsetDate": {"$gte": date("2020-06-01")}}, {"Milk", "Shellfish"}),
    ({"onsetDate": date("2020-06-01")}, {"Milk"}),
    ({"onsetDate": {"$gt": date("2012-01-01"), "$lt": date("2021-01-01")}}, {"penicillin", "Milk"}),
    ({"$or": [{"substance": "Milk"}, {"severity": "severe"}]}, {"Milk", "Peanut", "Shellfish"}),
    ({"$and": [{"severity": "mild"}, {"reaction": "Rash"}]}, {"Milk", "Egg"}),
    ({"severity": "mild", "reaction": "Rash"}, {"Milk", "Egg"}),
    ({"$or": [{"$and": [{"severity": "mild"}, {"notes": {"$exists": True}}]}, {"substance": "Egg"}]}, {"Pollen", "Egg"}),
    ({"isActive": True}, {"Peanut", "penicillin", "Milk", "Pollen", "Shellfish", "Egg"}),
    ({"isActive": False}, set()),
    ({"nonexistent": 1}, set()),  # transcript: a constraint on an unknown field matches nothing
    ({}, {"Peanut", "penicillin", "Milk", "Pollen", "Shellfish", "Egg"}),
])
def test_where_operators(world, where, expected):
    assert set(names(q(world, where))) == expected


def test_equality_on_pointers(world):
    main, child = world["main"], world["child"]
    assert set(names(q(world, {"profile": pointer("Profile", child)}))) == {"Egg"}
    assert len(names(q(world, {"profile": pointer("Profile", main)}))) == 5
    assert len(names(q(world, {"profile": {"$in": [pointer("Profile", main), pointer("Profile", child)]}}))) == 6
    assert len(names(q(world, {"profile": {"$ne": pointer("Profile", child)}}))) == 5


def test_equality_on_created_at_and_object_id(world):
    ids = world["ids"]
    assert names(q(world, {"objectId": ids["Milk"]})) == ["Milk"]
    assert set(names(q(world, {"objectId": {"$in": [ids["Milk"], ids["Egg"]]}}))) == {"Milk", "Egg"}
    got = ok(world["alice"].get(f"/classes/Allergy/{ids['Milk']}"))
    assert names(q(world, {"createdAt": {"__type": "Date", "iso": got["createdAt"]}, "substance": "Milk"})) == ["Milk"]
    assert len(names(q(world, {"createdAt": {"$gte": date("2000-01-01")}}))) == 6
    assert names(q(world, {"createdAt": {"$lt": date("2000-01-01")}})) == []


def test_all_on_arrays(signup, make_profile, make_document):
    _, alice = signup("alice")
    pid = make_profile(alice)
    a, _ = make_document(alice, pid, title="A", tags=["labs", "annual"])
    b, _ = make_document(alice, pid, title="B", tags=["labs"])
    make_document(alice, pid, title="C")

    def titles(where):
        return {o["title"] for o in ok(alice.get("/classes/MedicalDocument", {"where": where}))["results"]}

    assert titles({"tags": {"$all": ["labs", "annual"]}}) == {"A"}
    assert titles({"tags": {"$all": ["labs"]}}) == {"A", "B"}
    assert titles({"tags": "annual"}) == {"A"}  # equality on an array field: contains
    assert titles({"tags": {"$in": ["annual", "zzz"]}}) == {"A"}
    assert titles({"tags": {"$exists": False}}) == {"C"}


def test_numbers_and_text_in_lab_values(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    for v in (5, 6.1, 98, "No growth"):
        make_record(alice, "LabResult", pid, value=v)

    def values(where):
        return sorted(map(str, (o["value"] for o in ok(alice.get("/classes/LabResult", {"where": where}))["results"])))

    assert values({"value": {"$gt": 6}}) == ["6.1", "98"]
    assert values({"value": {"$lte": 6.1}}) == ["5", "6.1"]
    assert values({"value": "No growth"}) == ["No growth"]
    assert values({"value": {"$in": [5, "No growth"]}}) == ["5", "No growth"]
    assert values({"value": 98}) == ["98"]


def test_in_query_and_not_in_query(world):
    inner = {"className": "Profile", "where": {"fullName": {"$regex": "^Ch"}}}
    assert names(q(world, {"profile": {"$inQuery": inner}})) == ["Egg"]
    assert set(names(q(world, {"profile": {"$notInQuery": inner}}))) == set(world["ids"]) - {"Egg"}


def test_select_and_dont_select(world, make_record):
    alice, main = world["alice"], world["main"]
    make_record(alice, "Medication", main, name="Milk")  # a medication named like an allergy's substance
    make_record(alice, "Medication", main, name="Aspirin")
    sel = {"query": {"className": "Medication", "where": {}}, "key": "name"}
    assert names(q(world, {"substance": {"$select": sel}})) == ["Milk"]
    assert "Milk" not in names(q(world, {"substance": {"$dontSelect": sel}}))
    assert len(names(q(world, {"substance": {"$dontSelect": sel}}))) == 5


def test_subqueries_see_only_what_the_caller_may_read(world, signup, make_profile, make_record):
    # Bob's own profile is called "Child" too; alice's inQuery must not reach bob's rows, nor bob alice's.
    _, bob = signup("bob")
    bp = make_profile(bob, "Child")
    make_record(bob, "Allergy", bp, substance="Bob-only")
    inner = {"className": "Profile", "where": {"fullName": "Child"}}
    assert names(q(world, {"profile": {"$inQuery": inner}})) == ["Egg"]
    assert names(bob.get("/classes/Allergy", {"where": {"profile": {"$inQuery": inner}}})) == ["Bob-only"]


def test_order_several_keys_and_descending(world):
    r = q(world, order="-severity,substance")
    assert names(r) == ["Peanut", "Shellfish", "penicillin", "Egg", "Milk", "Pollen"]
    r = q(world, order="severity,-substance")
    assert names(r) == ["Pollen", "Milk", "Egg", "penicillin", "Shellfish", "Peanut"]
    assert names(q(world, order="-createdAt", limit=1)) == ["Egg"]
    assert names(q(world, order="onsetDate", where={"onsetDate": {"$exists": True}})) == \
        ["Peanut", "penicillin", "Milk", "Shellfish"]


def test_order_by_unknown_field_is_ignored(world):
    assert len(names(q(world, order="nonexistent"))) == 6


def test_limit_skip_and_count(world):
    page = q(world, order="substance", limit=2, skip=1, count=1)
    body = ok(page)
    assert [o["substance"] for o in body["results"]] == ["Milk", "Peanut"]  # Egg skipped; byte order
    assert body["count"] == 6
    body = ok(q(world, {"severity": "mild"}, count=1, limit=0))
    assert body == {"results": [], "count": 3}
    assert "count" not in ok(q(world))


def test_default_limit_is_100(signup, make_profile):
    _, alice = signup("alice")
    pid = make_profile(alice)
    requests = [{"method": "POST", "path": "/parse/classes/Medication",
                 "body": {"profile": pointer("Profile", pid), "name": f"m{i:03d}"}} for i in range(105)]
    results = ok(alice.post("/batch", {"requests": requests}))
    assert all("success" in r for r in results)
    assert len(ok(alice.get("/classes/Medication"))["results"]) == 100
    assert len(ok(alice.get("/classes/Medication", {"limit": 1000}))["results"]) == 105
    tail = ok(alice.get("/classes/Medication", {"skip": 100, "order": "name"}))["results"]
    assert [m["name"] for m in tail] == [f"m{i:03d}" for i in range(100, 105)]
    assert ok(alice.get("/classes/Medication", {"count": 1, "limit": 0}))["count"] == 105


@pytest.mark.parametrize("params", [{"limit": "abc"}, {"limit": -1}, {"skip": "x"}, {"skip": -5}, {"limit": 1.5}])
def test_bad_limit_or_skip_is_102(world, params):
    # Parse Server answers 500 for limit=abc (transcript); we answer a clear 102.
    parse_error(q(world, **params), 102)


def test_keys_restricts_fields(world):
    body = ok(q(world, {"substance": "Milk"}, keys="substance,severity"))
    (obj,) = body["results"]
    assert set(obj) == {"objectId", "createdAt", "updatedAt", "ACL", "substance", "severity"}


def test_exclude_keys(world):
    (obj,) = ok(q(world, {"substance": "Milk"}, excludeKeys="reaction,profile,ACL"))["results"]
    assert "reaction" not in obj and "profile" not in obj and "ACL" not in obj
    assert obj["substance"] == "Milk" and "objectId" in obj


def test_get_with_keys(world):
    oid = world["ids"]["Milk"]
    got = ok(world["alice"].get(f"/classes/Allergy/{oid}", params={"keys": "substance"}))
    assert got["substance"] == "Milk" and "severity" not in got and got["objectId"] == oid


def test_post_with_method_get_in_a_json_body(world):
    # The SDK's form of a query (header keys here; the text/plain envelope is in test_sdk_form.py).
    r = world["alice"].post("/classes/Allergy", {"_method": "GET", "where": {"severity": "severe"},
                                                 "order": "-substance", "limit": 1, "count": 1})
    body = ok(r)
    assert [o["substance"] for o in body["results"]] == ["Shellfish"] and body["count"] == 2


def test_post_with_method_get_writes_nothing(world, rows):
    before = rows("Allergy")
    ok(world["alice"].post("/classes/Allergy", {"_method": "GET", "where": {}}))
    assert rows("Allergy") == before


def test_unknown_query_parameter_is_102(world):
    # transcript: GET /classes/Allergy?unknownParam=1 -> 102 Invalid parameter for query: unknownParam
    parse_error(q(world, unknownParam=1), 102)


def test_nor(world):
    assert set(names(q(world, {"$nor": [{"severity": "mild"}, {"severity": "severe"}]}))) == {"penicillin"}
