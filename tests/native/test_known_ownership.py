"""What a request learnt about its caller's profiles when it authenticated answers the write checks of a
patient writing to their own profile (access.known_owner) until the request itself writes a profile, an
account or a provider."""
from __future__ import annotations

import pytest

from tests.conftest import pointer, sent_during
from tests.native.conftest import ok, parse_error


def allergy(pid: str, **extra) -> dict:
    return {"profile": pointer("Profile", pid), "substance": "Peanut", "severity": "mild", "reaction": "Hives",
            **extra}


@pytest.fixture
def alice(signup, make_profile):
    uid, a = signup("alice")
    a.user_id = uid
    return a, make_profile(a)


def test_a_patient_writing_to_their_profile_asks_no_policy_question(alice, sent):
    a, pid = alice
    with sent_during(sent) as seen:
        created = ok(a.post("/classes/Allergy", allergy(pid)), 201)
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    policy = [s for s in selects if "shared_access" in s or "FROM profile" in s.replace("\n", " ")]
    # The session token's own lookup (no caller cache here) is the only one that reads profiles.
    assert len(policy) <= 1 and all("user_session" in s for s in policy), policy
    assert ok(a.get(f"/classes/Allergy/{created['objectId']}"))["ACL"] == {a.user_id: {"read": True, "write": True}}


def test_someone_elses_profile_is_still_refused(alice, signup):
    _, pid = alice
    _, mallory = signup("mallory")
    parse_error(mallory.post("/classes/Allergy", allergy(pid)), 119)


def test_a_profile_deleted_in_the_same_batch_takes_no_new_records(alice):
    a, pid = alice
    r = a.post("/batch", {"transaction": True, "requests": [
        {"method": "DELETE", "path": f"/parse/classes/Profile/{pid}"},
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid)},
    ]})
    assert r.status_code >= 400, r.json
    assert ok(a.get("/classes/Profile"))["results"] != []  # all or nothing: the profile is still there
    results = ok(a.post("/batch", {"requests": [
        {"method": "DELETE", "path": f"/parse/classes/Profile/{pid}"},
        {"method": "POST", "path": "/parse/classes/Allergy", "body": allergy(pid)},
    ]}))
    assert results[0] == {"success": {}}
    assert results[1]["error"]["code"] == 119


def test_a_profile_deleted_by_an_earlier_request_takes_no_new_records(alice):
    a, pid = alice
    ok(a.delete(f"/classes/Profile/{pid}"))
    parse_error(a.post("/classes/Allergy", allergy(pid)), 119)


def test_a_rollback_forgets_a_profile_learnt_inside_it(db_session):
    """A profile the caller created is known for the rest of the request, unless the SAVEPOINT (or the
    transaction) it was created in rolls back: then the request asks the database again, for all."""
    import gateway.services.write_buffer  # noqa: F401 - its rollback listener
    from gateway import access

    access.learn_ownership(db_session, "u1", frozenset({"p0"}), frozenset({"p0"}))
    access.learn_new_profile(db_session, "u1", "p1")
    assert access.known_owner(db_session, "p1") == "u1" and access.known_owner(db_session, "p0") == "u1"
    nested = db_session.begin_nested()
    access.learn_new_profile(db_session, "u1", "p2")
    assert access.known_owner(db_session, "p2") == "u1"
    nested.rollback()
    assert [access.known_owner(db_session, p) for p in ("p0", "p1", "p2")] == [None, None, None]


def test_a_profile_is_learnt_only_by_its_own_creator(db_session):
    from gateway import access

    access.learn_ownership(db_session, "u1", frozenset({"p0"}), frozenset({"p0"}))
    access.learn_new_profile(db_session, "u2", "p9")  # (only ever called with the caller's own id)
    assert access.known_owner(db_session, "p9") == "u2"
    assert access.known_owner(db_session, "p0") is None  # what was known of u1 is not u2's
