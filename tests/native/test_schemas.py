"""/schemas: the fixed PHR schema, read with the master key; every change refused (README: deliberate
difference; transcript rest[] GET/POST/PUT/DELETE /schemas/...)."""
import pytest

from gateway.schema import registry
from tests.native.conftest import ok, parse_error

CLASSES = sorted(registry())


def test_all_schemas_with_master_key(master):
    results = ok(master.get("/schemas"))["results"]
    assert sorted(s["className"] for s in results) == CLASSES
    for s in results:
        assert {"objectId", "createdAt", "updatedAt", "ACL"} <= set(s["fields"])
        assert "classLevelPermissions" in s


def test_one_schema_describes_types_targets_and_required(master):
    s = ok(master.get("/schemas/Allergy"))
    assert s["className"] == "Allergy"
    f = s["fields"]
    assert f["profile"] == {"type": "Pointer", "targetClass": "Profile", "required": True}
    assert f["substance"]["type"] == "String" and f["substance"]["required"] is True
    assert f["onsetDate"] == {"type": "Date"}
    assert f["isActive"]["type"] == "Boolean" and f["isActive"]["defaultValue"] is True
    doc = ok(master.get("/schemas/MedicalDocument"))["fields"]
    assert doc["file"]["type"] == "File" and doc["tags"]["type"] == "Array"
    user = ok(master.get("/schemas/_User"))["fields"]
    assert user["password"] == {"type": "String"} and "password_hash" not in user


def test_alias_reads_the_canonical_schema(master):
    assert ok(master.get("/schemas/Immunization"))["className"] == "Vaccination"


def test_unknown_class_schema_is_103(master):
    parse_error(master.get("/schemas/NoSuchClass"), 103)


@pytest.mark.parametrize("path", ["/schemas", "/schemas/Allergy"])
def test_schemas_need_the_master_key(signup, parse, path):
    _, alice = signup("alice")
    for client in (alice, parse):
        r = client.get(path)
        assert r.status_code == 403 and r.json == {"error": "unauthorized: master key is required"}


@pytest.mark.parametrize("method, path, body, code", [
    ("POST", "/schemas/Allergy", {"className": "Allergy"}, 103),                          # exists
    ("POST", "/schemas/NewClass", {"className": "NewClass", "fields": {"a": {"type": "String"}}}, 119),
    ("PUT", "/schemas/Allergy", {"fields": {"extra": {"type": "String"}}}, 119),
    ("PUT", "/schemas/Allergy", {"fields": {"notes": {"__op": "Delete"}}}, 119),
    ("DELETE", "/schemas/Allergy", None, 119),
])
def test_schema_changes_are_refused_even_for_master(master, method, path, body, code):
    parse_error(master.request(method, path, body), code)
    fields = ok(master.get("/schemas/Allergy"))["fields"]
    assert "extra" not in fields and "notes" in fields
    assert "NewClass" not in {s["className"] for s in ok(master.get("/schemas"))["results"]}


def test_schema_changes_without_master_are_unauthorized(signup):
    _, alice = signup("alice")
    r = alice.put("/schemas/Allergy", {"fields": {"extra": {"type": "String"}}})
    assert r.status_code == 403 and "unauthorized" in r.json["error"]


def test_server_info_needs_master_and_reports_schema_fixed(master, signup):
    _, alice = signup("alice")
    assert alice.get("/serverInfo").status_code == 403
    info = ok(master.get("/serverInfo"))
    assert info["features"]["schemas"]["addField"] is False
