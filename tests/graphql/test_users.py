"""signUp, logIn and logOut (Parse Server's usersMutations) over the same UserService as /users, /login and
/logout: the token works on every face, Parse's error codes, and nothing is left behind by a refusal."""
from __future__ import annotations

from sqlalchemy import func, select

from gateway.models import User
from gateway.models.user import Session as UserSession
from tests.graphql.conftest import GraphQL, codes

SIGN_UP = """mutation($fields: CreateUserFieldsInput) {
  signUp(input: {fields: $fields, clientMutationId: "s1"}) {
    clientMutationId viewer { sessionToken user { objectId username email role } }
  }
}"""
LOG_IN = """mutation($username: String!, $password: String!) {
  logIn(input: {username: $username, password: $password}) { viewer { sessionToken user { objectId } } }
}"""
LOG_OUT = """mutation { logOut(input: {clientMutationId: "o1"}) { ok clientMutationId } }"""
VIEWER = "{ viewer { sessionToken user { username } } }"


def accounts(db_session, username: str) -> int:
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(User).where(User.username == username))


def sessions_of(db_session, uid: str) -> int:
    db_session.expire_all()
    return db_session.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == uid))


def test_sign_up_answers_a_session_every_face_accepts(gql, client, parse, rows_of):
    fields = {"username": "gwen", "password": "s3cret!", "email": "gwen@example.org"}
    out = gql.data(SIGN_UP, {"fields": fields})
    viewer = out["signUp"]["viewer"]
    assert out["signUp"]["clientMutationId"] == "s1"
    assert viewer["user"]["username"] == "gwen" and viewer["user"]["role"] == "patient"
    assert viewer["sessionToken"].startswith("r:")
    as_gwen = GraphQL(client, viewer["sessionToken"])
    assert as_gwen.data(VIEWER)["viewer"]["user"]["username"] == "gwen"
    me = parse.as_user(viewer["sessionToken"]).get("/users/me")
    assert me.status_code == 200 and me.json["objectId"] == viewer["user"]["objectId"]
    assert rows_of(action="signup", actor_id=viewer["user"]["objectId"]) == 1


def test_sign_up_refusals_leave_no_account(gql, master_gql, db_session):
    assert codes(gql(SIGN_UP, {"fields": {"username": "hal"}})) == [201]  # no password
    assert codes(gql(SIGN_UP, {"fields": {"password": "x"}})) == [200]  # no username
    bad_email = {"username": "hal", "password": "x", "email": "not-an-address"}
    assert codes(gql(SIGN_UP, {"fields": bad_email})) == [125]
    # Only the master key makes accounts of other roles, as on /users.
    assert codes(gql(SIGN_UP, {"fields": {"username": "hal", "password": "x", "role": "admin"}})) == [119]
    assert accounts(db_session, "hal") == 0
    made = master_gql.data(SIGN_UP, {"fields": {"username": "hal", "password": "x", "role": "provider"}})
    assert made["signUp"]["viewer"]["user"]["role"] == "provider"
    assert codes(gql(SIGN_UP, {"fields": {"username": "hal", "password": "y"}})) == [202]  # taken
    assert accounts(db_session, "hal") == 1


def test_log_in_and_log_out(gql, client, db_session):
    made = gql.data(SIGN_UP, {"fields": {"username": "ivy", "password": "pw1"}})
    uid = made["signUp"]["viewer"]["user"]["objectId"]
    assert codes(gql(LOG_IN, {"username": "ivy", "password": "wrong"})) == [101]
    assert codes(gql(LOG_IN, {"username": "nobody", "password": "pw1"})) == [101]
    viewer = gql.data(LOG_IN, {"username": "ivy", "password": "pw1"})["logIn"]["viewer"]
    assert viewer["user"]["objectId"] == uid
    as_ivy = GraphQL(client, viewer["sessionToken"])
    assert as_ivy.data(VIEWER)["viewer"]["sessionToken"] == viewer["sessionToken"]
    assert sessions_of(db_session, uid) == 2  # the signup's and this one
    assert as_ivy.data(LOG_OUT)["logOut"] == {"ok": True, "clientMutationId": "o1"}
    assert codes(as_ivy(VIEWER, status=400)) == [209]  # that session is over ...
    assert sessions_of(db_session, uid) == 1
    assert gql.data(LOG_OUT)["logOut"]["ok"] is True  # ... and without one there is nothing to end


def test_log_in_needs_its_arguments(gql):
    out = gql("mutation { logIn(input: {username: \"ivy\"}) { viewer { sessionToken } } }", status=400)
    assert out["errors"] and "password" in out["errors"][0]["message"]
