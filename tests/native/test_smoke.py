"""A first end-to-end pass through the native API in the test client: signup, profile, allergy, query."""
from tests.conftest import pointer


def test_owner_creates_and_queries_a_record(signup):
    uid, alice = signup("alice")
    r = alice.post("/classes/Profile", {"fullName": "Alice Example"})
    assert r.status_code == 201
    pid = r.json["objectId"]
    assert r.headers["Location"].endswith(f"/parse/classes/Profile/{pid}")
    assert r.json["user"] == pointer("_User", uid)
    r = alice.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": "Peanut",
                                        "severity": "severe", "reaction": "Hives"})
    assert r.status_code == 201, r.json
    r = alice.get("/classes/Allergy", {"where": {"profile": pointer("Profile", pid)}, "count": 1})
    assert r.json["count"] == 1
    assert r.json["results"][0]["substance"] == "Peanut"


def test_other_user_sees_nothing(signup):
    _, alice = signup("alice")
    _, bob = signup("bob")
    pid = alice.post("/classes/Profile", {"fullName": "Alice"}).json["objectId"]
    aid = alice.post("/classes/Allergy", {"profile": pointer("Profile", pid), "substance": "Milk",
                                          "severity": "mild", "reaction": "Rash"}).json["objectId"]
    assert bob.get("/classes/Allergy").json == {"results": []}
    r = bob.get(f"/classes/Allergy/{aid}")
    assert r.status_code == 404 and r.json["code"] == 101
