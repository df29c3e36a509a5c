"""`include` (one level, dotted paths, '*') and `keys` reaching into included objects; an included
pointer the caller may not read stays a bare pointer (transcript rest[]: include=profile.owner with
keys=profile.owner.username)."""
import pytest

from tests.conftest import pointer
from tests.native.conftest import ok


@pytest.fixture
def chain(signup, make_profile, make_record, make_document):
    """LabResult -> attachment (MedicalDocument) -> profile (Profile) -> user (_User)."""
    uid, alice = signup("alice")
    pid = make_profile(alice, "Alice")
    doc, file_name = make_document(alice, pid)
    lab = make_record(alice, "LabResult", pid, attachment=pointer("MedicalDocument", doc))
    return {"uid": uid, "alice": alice, "pid": pid, "doc": doc, "lab": lab, "file": file_name}


def test_include_one_level(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {"include": "profile"}))["results"]
    assert lab["profile"]["__type"] == "Object" and lab["profile"]["className"] == "Profile"
    assert lab["profile"]["objectId"] == chain["pid"] and lab["profile"]["fullName"] == "Alice"
    assert lab["attachment"] == pointer("MedicalDocument", chain["doc"])  # not included: a pointer


def test_include_dotted_path(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {"include": "attachment.profile.user"}))["results"]
    doc = lab["attachment"]
    assert doc["__type"] == "Object" and doc["title"] == "Annual panel"
    assert doc["file"]["__type"] == "File" and doc["file"]["name"] == chain["file"]
    assert doc["profile"]["className"] == "Profile" and doc["profile"]["fullName"] == "Alice"
    user = doc["profile"]["user"]
    assert user["__type"] == "Object" and user["className"] == "_User" and user["username"] == "alice"
    assert "password" not in str(user)
    assert lab["profile"] == pointer("Profile", chain["pid"])  # only the named path is included


def test_include_several_paths_comma_separated(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {"include": "profile,attachment"}))["results"]
    assert lab["profile"]["__type"] == "Object" and lab["attachment"]["__type"] == "Object"


def test_include_star(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {"include": "*"}))["results"]
    assert lab["profile"]["__type"] == "Object" and lab["attachment"]["__type"] == "Object"
    assert lab["attachment"]["profile"]["__type"] == "Pointer"  # '*' is one level deep


def test_include_on_get(chain):
    got = ok(chain["alice"].get(f"/classes/LabResult/{chain['lab']}", {"include": "attachment"}))
    assert got["attachment"]["title"] == "Annual panel"


def test_include_in_post_method_get(chain):
    r = chain["alice"].post("/classes/LabResult", {"_method": "GET", "include": "profile", "where": {}})
    assert ok(r)["results"][0]["profile"]["__type"] == "Object"


def test_keys_into_included_objects(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {
        "include": "attachment.profile", "keys": "attachment.title,attachment.profile.fullName"}))["results"]
    assert "testName" not in lab
    doc = lab["attachment"]
    assert doc["title"] == "Annual panel" and "documentType" not in doc
    assert doc["profile"]["fullName"] == "Alice" and "user" not in doc["profile"]


def test_include_of_unknown_or_non_pointer_field_is_harmless(chain):
    (lab,) = ok(chain["alice"].get("/classes/LabResult", {"include": "testName,nonexistent"}))["results"]
    assert lab["testName"] == "Glucose"


def test_included_objects_are_batched_per_class(chain, make_record):
    alice, pid, doc = chain["alice"], chain["pid"], chain["doc"]
    for _ in range(3):
        make_record(alice, "LabResult", pid, attachment=pointer("MedicalDocument", doc))
    results = ok(alice.get("/classes/LabResult", {"include": "attachment"}))["results"]
    assert len(results) == 4 and all(r["attachment"]["objectId"] == doc for r in results)


def test_include_never_reveals_what_the_caller_may_not_read(chain, provider_user, share):
    # A provider granted labs only: the lab result is readable, the document it points to is not.
    dr_id, _, dr = provider_user()
    share(chain["alice"], chain["pid"], dr_id, scope=["labs"])
    (lab,) = ok(dr.get("/classes/LabResult", {"include": "attachment,profile"}))["results"]
    assert lab["attachment"] == pointer("MedicalDocument", chain["doc"])
    assert lab["profile"]["__type"] == "Object"  # the grantee always sees the Profile itself
    (lab,) = ok(dr.get("/classes/LabResult", {"include": "profile.user"}))["results"]
    assert lab["profile"]["user"] == pointer("_User", chain["uid"])  # other users are never included
