"""Parse's update operators: Increment, Add, AddUnique, Remove, Delete (and their echo in the answer,
as in transcript rest[] 'PUT /classes/Allergy/...' -> {"severity": 4, "reactions": [...], "updatedAt"})."""
import pytest

from tests.native.conftest import ok, parse_error


@pytest.fixture
def alice_doc(signup, make_profile, make_document):
    _, alice = signup("alice")
    pid = make_profile(alice)
    doc, _ = make_document(alice, pid, tags=["labs"])
    return alice, doc, pid


@pytest.fixture
def alice_lab(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    return alice, make_record(alice, "LabResult", pid, value=5)


def test_increment_adds_and_echoes(alice_lab):
    alice, lab = alice_lab
    body = ok(alice.put(f"/classes/LabResult/{lab}", {"value": {"__op": "Increment", "amount": 2}}))
    assert body["value"] == 7 and "updatedAt" in body
    body = ok(alice.put(f"/classes/LabResult/{lab}", {"value": {"__op": "Increment", "amount": -0.5}}))
    assert body["value"] == 6.5
    assert ok(alice.get(f"/classes/LabResult/{lab}"))["value"] == 6.5


def test_increment_of_an_unset_number_starts_at_zero(signup, make_profile, make_record):
    _, alice = signup("alice")
    pid = make_profile(alice)
    lab = ok(alice.post("/classes/LabResult", {"profile": {"__type": "Pointer", "className": "Profile", "objectId": pid},
                                               "testName": "x", "date": {"__type": "Date", "iso": "2025-01-01T00:00:00Z"}}), 201)["objectId"]
    assert ok(alice.put(f"/classes/LabResult/{lab}", {"value": {"__op": "Increment", "amount": 3}}))["value"] == 3


@pytest.mark.parametrize("field, op", [
    ("testName", {"__op": "Increment", "amount": 1}),          # not a number field
    ("value", {"__op": "Increment", "amount": "1"}),           # not a number amount
    ("value", {"__op": "Increment", "amount": True}),
    ("testName", {"__op": "Add", "objects": ["x"]}),           # not an array field
])
def test_operator_on_wrong_type_is_111(alice_lab, field, op):
    alice, lab = alice_lab
    before = ok(alice.get(f"/classes/LabResult/{lab}"))
    parse_error(alice.put(f"/classes/LabResult/{lab}", {field: op}), 111)
    assert ok(alice.get(f"/classes/LabResult/{lab}")) == before


def test_increment_on_text_value_is_111(signup, make_profile, make_record):
    _, alice = signup("alice")
    lab = make_record(alice, "LabResult", make_profile(alice), value="No growth")
    parse_error(alice.put(f"/classes/LabResult/{lab}", {"value": {"__op": "Increment", "amount": 1}}), 111)


def test_add_appends_even_duplicates(alice_doc):
    alice, doc, _ = alice_doc
    body = ok(alice.put(f"/classes/MedicalDocument/{doc}", {"tags": {"__op": "Add", "objects": ["annual", "labs"]}}))
    assert body["tags"] == ["labs", "annual", "labs"]
    assert ok(alice.get(f"/classes/MedicalDocument/{doc}"))["tags"] == ["labs", "annual", "labs"]


def test_add_unique_skips_what_is_there(alice_doc):
    alice, doc, _ = alice_doc
    body = ok(alice.put(f"/classes/MedicalDocument/{doc}",
                        {"tags": {"__op": "AddUnique", "objects": ["labs", "annual", "annual"]}}))
    assert body["tags"] == ["labs", "annual"]
    assert ok(alice.get(f"/classes/MedicalDocument/{doc}"))["tags"] == ["labs", "annual"]


def test_remove_takes_every_occurrence(alice_doc):
    alice, doc, _ = alice_doc
    ok(alice.put(f"/classes/MedicalDocument/{doc}", {"tags": ["a", "b", "a", "c"]}))
    body = ok(alice.put(f"/classes/MedicalDocument/{doc}", {"tags": {"__op": "Remove", "objects": ["a", "zz"]}}))
    assert body["tags"] == ["b", "c"]
    assert ok(alice.get(f"/classes/MedicalDocument/{doc}"))["tags"] == ["b", "c"]


def test_add_on_create_starts_from_nothing(signup, make_profile, upload):
    _, alice = signup("alice")
    pid = make_profile(alice)
    stored = upload(alice)
    r = alice.post("/classes/MedicalDocument", {
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": pid},
        "file": {"__type": "File", "name": stored["name"]}, "documentType": "x", "title": "t",
        "tags": {"__op": "AddUnique", "objects": ["a", "a"]},
    })
    oid = ok(r, 201)["objectId"]
    assert ok(alice.get(f"/classes/MedicalDocument/{oid}"))["tags"] == ["a"]


def test_delete_op_unsets_an_optional_field(signup, make_profile, make_record):
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice), notes="x")
    body = ok(alice.put(f"/classes/Allergy/{oid}", {"notes": {"__op": "Delete"}}))
    assert "notes" not in body
    assert "notes" not in ok(alice.get(f"/classes/Allergy/{oid}"))


def test_delete_op_on_required_field_is_142(signup, make_profile, make_record):
    _, alice = signup("alice")
    oid = make_record(alice, "Allergy", make_profile(alice))
    parse_error(alice.put(f"/classes/Allergy/{oid}", {"substance": {"__op": "Delete"}}), 142)
    assert ok(alice.get(f"/classes/Allergy/{oid}"))["substance"] == "Peanut"


def test_array_ops_respect_allowed_values(signup, make_profile, share):
    uid, alice = signup("alice")
    bob_id, _ = signup("bob")
    pid = make_profile(alice)
    grant = share(alice, pid, bob_id, scope=["allergies"])
    body = ok(alice.put(f"/classes/SharedAccess/{grant}", {"scope": {"__op": "AddUnique", "objects": ["labs"]}}))
    assert body["scope"] == ["allergies", "labs"]
    parse_error(alice.put(f"/classes/SharedAccess/{grant}", {"scope": {"__op": "Add", "objects": ["everything"]}}), 142)
    ok(alice.put(f"/classes/SharedAccess/{grant}", {"scope": {"__op": "Remove", "objects": ["allergies"]}}))
    assert ok(alice.get(f"/classes/SharedAccess/{grant}"))["scope"] == ["labs"]


@pytest.mark.parametrize("op", [
    {"__op": "Frobnicate"},
    {"__op": "Add", "objects": "not-a-list"},
])
def test_unknown_or_malformed_operator_is_refused(alice_doc, op):
    alice, doc, _ = alice_doc
    r = alice.put(f"/classes/MedicalDocument/{doc}", {"tags": op})
    assert r.status_code == 400 and r.json["code"] in (107, 111)
    assert ok(alice.get(f"/classes/MedicalDocument/{doc}"))["tags"] == ["labs"]


def test_several_operators_in_one_update(signup, make_profile, make_document):
    # As the SDK's 'update with increment/addUnique' step (transcript sdk[] id 20) sends them together.
    _, alice = signup("alice")
    pid = make_profile(alice)
    doc, _ = make_document(alice, pid, tags=["x"], description="d")
    body = ok(alice.put(f"/classes/MedicalDocument/{doc}", {
        "tags": {"__op": "AddUnique", "objects": ["y"]}, "description": {"__op": "Delete"}, "title": "New",
    }))
    assert body["tags"] == ["x", "y"]
    got = ok(alice.get(f"/classes/MedicalDocument/{doc}"))
    assert got["tags"] == ["x", "y"] and got["title"] == "New" and "description" not in got
