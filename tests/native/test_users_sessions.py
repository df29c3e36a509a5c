"""Signup, login (GET and POST), logout, /users/me, /sessions and session expiry, with Parse's codes
(transcript rest[]: POST /users, GET|POST /login, GET /users/me, GET /sessions, POST /logout)."""
import time

import pytest

from tests.native.conftest import ok, parse_error


def _no_password(obj) -> None:
    """No password, hash or similar ever leaves the server, at any depth."""
    text = str(obj).lower()
    assert "password" not in text and "scrypt" not in text and "pbkdf2" not in text, obj


def test_signup_answers_201_with_location_and_an_r_token(parse):
    r = parse.post("/users", {"username": "alice", "password": "pw-123456", "email": "alice@example.org"})
    body = ok(r, 201)
    assert set(body) == {"objectId", "createdAt", "sessionToken"}
    assert body["sessionToken"].startswith("r:") and len(body["sessionToken"]) > 20
    assert r.headers["Location"] == f"http://testserver/parse/users/{body['objectId']}"
    _no_password(body)


def test_signup_through_classes_user_is_the_same(parse):
    body = ok(parse.post("/classes/_User", {"username": "alice", "password": "pw"}), 201)
    assert body["sessionToken"].startswith("r:")


@pytest.mark.parametrize("body, code", [
    ({"password": "pw"}, 200),
    ({"username": "", "password": "pw"}, 200),
    ({"username": 5, "password": "pw"}, 200),
    ({"username": "carol"}, 201),
    ({"username": "carol", "password": ""}, 201),
    ({"username": "carol", "password": "pw", "email": "not-an-email"}, 125),
])
def test_signup_validation_codes(parse, rows, body, code):
    parse_error(parse.post("/users", body), code)
    assert rows("_User") == 0


def test_duplicate_username_202_and_email_203(parse, rows):
    ok(parse.post("/users", {"username": "alice", "password": "pw", "email": "a@example.org"}), 201)
    parse_error(parse.post("/users", {"username": "alice", "password": "other"}), 202)
    parse_error(parse.post("/users", {"username": "alice2", "password": "pw", "email": "A@example.org"}), 203)
    assert rows("_User") == 1


@pytest.mark.parametrize("role", ["provider", "admin", "caregiver"])
def test_public_signup_makes_patients_only(parse, rows, role):
    r = parse.post("/users", {"username": "mallory", "password": "pw", "role": role})
    parse_error(r, 119)
    assert rows("_User") == 0


def test_public_signup_role_defaults_to_patient(parse, signup):
    uid, alice = signup("alice")
    assert ok(alice.get("/users/me"))["role"] == "patient"
    ok(parse.post("/users", {"username": "pat", "password": "pw", "role": "patient"}), 201)


def test_master_key_makes_provider_accounts(make_user):
    uid, dr = make_user("dr.who", role="provider")
    assert ok(dr.get("/users/me"))["role"] == "provider"


def test_signup_refuses_unknown_fields(parse, rows):
    parse_error(parse.post("/users", {"username": "a", "password": "pw", "isAdmin": True}), 119)
    assert rows("_User") == 0


@pytest.mark.parametrize("form", ["GET", "POST"])
def test_login_both_forms(parse, signup, form):
    uid, _ = signup("alice", "secret-pw", email="alice@example.org")
    creds = {"username": "alice", "password": "secret-pw"}
    r = parse.get("/login", params=creds) if form == "GET" else parse.post("/login", creds)
    body = ok(r)
    assert body["objectId"] == uid and body["username"] == "alice" and body["email"] == "alice@example.org"
    assert body["sessionToken"].startswith("r:")
    assert body["ACL"] == {uid: {"read": True, "write": True}}
    _no_password(body)
    assert ok(parse.as_user(body["sessionToken"]).get("/users/me"))["objectId"] == uid


@pytest.mark.parametrize("creds, code, status", [
    ({"username": "alice", "password": "wrong"}, 101, 404),
    ({"username": "nobody", "password": "x"}, 101, 404),
    ({"username": "alice"}, 201, 400),
    ({"password": "secret-pw"}, 200, 400),
])
def test_login_failures(parse, signup, creds, code, status):
    signup("alice", "secret-pw")
    parse_error(parse.get("/login", params=creds), code, status)


def test_wrong_password_and_unknown_user_answer_alike(parse, signup):
    signup("alice", "secret-pw")
    a = parse.get("/login", params={"username": "alice", "password": "wrong"})
    b = parse.get("/login", params={"username": "nobody", "password": "wrong"})
    assert (a.status_code, a.json) == (b.status_code, b.json)


def test_users_me(signup):
    uid, alice = signup("alice")
    body = ok(alice.get("/users/me"))
    assert body["objectId"] == uid and body["sessionToken"] == alice.token
    _no_password(body)


@pytest.mark.parametrize("token", [None, "r:invalidtoken", "r:" + "0" * 32, "garbage"])
def test_users_me_without_a_valid_token_is_209(parse, token):
    client = parse.as_user(token) if token else parse
    parse_error(client.get("/users/me"), 209)


def test_logout_ends_that_token_only(parse, signup):
    uid, first = signup("alice", "secret-pw")
    second = parse.as_user(ok(parse.post("/login", {"username": "alice", "password": "secret-pw"}))["sessionToken"])
    assert ok(first.post("/logout")) == {}
    parse_error(first.get("/users/me"), 209)
    parse_error(first.post("/logout"), 209)  # as Parse: the dead token is refused
    assert ok(second.get("/users/me"))["objectId"] == uid


def test_sessions_lists_own_sessions_without_tokens(parse, signup):
    uid, alice = signup("alice", "secret-pw")
    ok(parse.post("/login", {"username": "alice", "password": "secret-pw"}))
    _, bob = signup("bob")
    results = ok(alice.get("/sessions"))["results"]
    assert len(results) == 2
    assert {s["user"]["objectId"] for s in results} == {uid}
    assert all("sessionToken" not in s for s in results)
    assert {s["createdWith"]["action"] for s in results} == {"signup", "login"}
    assert all(s["expiresAt"]["__type"] == "Date" for s in results)


def test_sessions_me(signup):
    uid, alice = signup("alice")
    body = ok(alice.get("/sessions/me"))
    assert body["user"] == {"__type": "Pointer", "className": "_User", "objectId": uid}
    assert body["sessionToken"] == alice.token
    assert body["createdWith"] == {"action": "signup", "authProvider": "password"}


def test_sessions_without_token_is_209(parse):
    parse_error(parse.get("/sessions"), 209)
    parse_error(parse.get("/sessions/me"), 209)


def test_master_lists_every_session_but_never_a_token(signup, master):
    signup("alice")
    signup("bob")
    results = ok(master.get("/sessions"))["results"]
    assert len(results) == 2 and all("sessionToken" not in s for s in results)


def test_deleting_own_session_ends_it(signup):
    _, alice = signup("alice")
    sid = ok(alice.get("/sessions/me"))["objectId"]
    assert ok(alice.delete(f"/sessions/{sid}")) == {}
    parse_error(alice.get("/users/me"), 209)


def test_another_users_session_is_not_found(signup):
    _, alice = signup("alice")
    _, bob = signup("bob")
    sid = ok(alice.get("/sessions/me"))["objectId"]
    parse_error(bob.get(f"/sessions/{sid}"), 101, 404)
    parse_error(bob.delete(f"/sessions/{sid}"), 101, 404)
    assert ok(alice.get("/users/me"))


def test_session_tokens_expire(configured):
    client = configured(SESSION_LENGTH_SECONDS=1)
    token = ok(client.post("/users", {"username": "alice", "password": "pw"}), 201)["sessionToken"]
    alice = client.as_user(token)
    assert ok(alice.get("/users/me"))["username"] == "alice"
    expires = ok(alice.get("/sessions/me"))["expiresAt"]["iso"]
    time.sleep(1.1)
    parse_error(alice.get("/users/me"), 209)
    parse_error(alice.get("/classes/Allergy"), 209)
    assert expires  # the expiry is reported in Parse's Date form


def test_default_session_length_is_a_year(signup):
    from datetime import datetime, timezone

    _, alice = signup("alice")
    iso = ok(alice.get("/sessions/me"))["expiresAt"]["iso"]
    days = (datetime.fromisoformat(iso.replace("Z", "+00:00")) - datetime.now(timezone.utc)).days
    assert 363 <= days <= 365


def test_users_query_shows_only_oneself(signup, master):
    uid, alice = signup("alice")
    bob_id, _ = signup("bob")
    results = ok(alice.get("/users"))["results"]
    assert [u["objectId"] for u in results] == [uid]
    everyone = ok(master.get("/users"))["results"]
    assert {u["objectId"] for u in everyone} == {uid, bob_id}
    _no_password(everyone)
    _no_password(results)


def test_get_user(signup, master):
    uid, alice = signup("alice")
    bob_id, bob = signup("bob")
    _no_password(ok(alice.get(f"/users/{uid}")))
    parse_error(bob.get(f"/users/{uid}"), 101, 404)
    parse_error(bob.get(f"/classes/_User/{uid}"), 101, 404)
    _no_password(ok(master.get(f"/users/{uid}")))


def test_change_password_keeps_this_session_and_ends_the_others(parse, signup):
    uid, alice = signup("alice", "old-pw")
    other = parse.as_user(ok(parse.post("/login", {"username": "alice", "password": "old-pw"}))["sessionToken"])
    body = ok(alice.put(f"/users/{uid}", {"password": "new-pw"}))
    assert set(body) == {"updatedAt"}
    assert ok(alice.get("/users/me"))["objectId"] == uid
    parse_error(other.get("/users/me"), 209)
    parse_error(parse.get("/login", params={"username": "alice", "password": "old-pw"}), 101, 404)
    ok(parse.get("/login", params={"username": "alice", "password": "new-pw"}))


def test_update_own_email_and_not_others(signup):
    uid, alice = signup("alice")
    bob_id, bob = signup("bob", email="bob@example.org")
    ok(alice.put(f"/users/{uid}", {"email": "alice@example.org"}))
    assert ok(alice.get("/users/me"))["email"] == "alice@example.org"
    parse_error(alice.put(f"/users/{uid}", {"email": "bob@example.org"}), 203)
    parse_error(alice.put(f"/users/{uid}", {"username": "bob"}), 202)
    parse_error(bob.put(f"/users/{uid}", {"email": "x@example.org"}), 206)
    parse_error(alice.put(f"/users/{uid}", {"role": "admin"}), 119)
    assert ok(alice.get("/users/me"))["role"] == "patient"


def test_delete_own_account(parse, signup, rows):
    uid, alice = signup("alice", "pw")
    bob_id, bob = signup("bob")
    parse_error(bob.delete(f"/users/{uid}"), 206)
    assert ok(alice.delete(f"/users/{uid}")) == {}
    parse_error(parse.get("/login", params={"username": "alice", "password": "pw"}), 101, 404)
    assert rows("_User") == 1


def test_login_records_the_installation_id(parse, signup):
    signup("alice", "pw")
    r = parse.post("/login", {"username": "alice", "password": "pw"},
                   headers={"X-Parse-Installation-Id": "11111111-1111-4111-8111-111111111111"})
    me = ok(parse.as_user(ok(r)["sessionToken"]).get("/sessions/me"))
    assert me["installationId"] == "11111111-1111-4111-8111-111111111111"



def test_an_account_with_history_is_not_deleted(signup, make_profile, rows):
    uid, alice = signup("alice")
    pid = make_profile(alice)
    parse_error(alice.delete(f"/users/{uid}"), 119)  # still owns a live profile
    ok(alice.delete(f"/classes/Profile/{pid}"))
    parse_error(alice.delete(f"/users/{uid}"), 119)  # the deleted profile's history still names her
    assert rows("_User") == 1


@pytest.mark.parametrize("change", [{"username": "a\x00b"}, {"username": "u" * 151}, {"email": "x\x00@example.org"}])
def test_account_changes_the_database_cannot_hold_are_refused(signup, change):
    uid, alice = signup("alice")
    r = alice.put(f"/users/{uid}", change)
    assert r.status_code == 400 and r.json["code"] in (107, 142), r.json
    assert ok(alice.get("/users/me"))["username"] == "alice"
