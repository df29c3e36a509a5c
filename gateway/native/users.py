"""/users, /login, /logout, /sessions: Parse's account and session endpoints."""
from __future__ import annotations

from sqlalchemy import select

from gateway.errors import Conflict, Forbidden, InvalidInput, Unauthenticated
from gateway.models import User
from gateway.native.context import NativeRequest
from gateway.native.params import get_args, query_args
from gateway.native.router import Reply, route
from gateway.schema import class_spec
from gateway.services import codec
from gateway.services.query import get_object, run_query
from gateway.services.users import hash_token

_SIGNUP_FIELDS = {"username", "password", "email", "role", "ACL"}


def user_json(user: User, token: str | None = None) -> dict:
    out = codec.encode(class_spec("_User"), user)
    if token:
        out["sessionToken"] = token
    return out


def _require_user(req: NativeRequest) -> None:
    if req.user is None:
        raise Unauthenticated("Invalid session token")


@route("/users", "POST")
def signup(req: NativeRequest) -> Reply:
    """Sign up: public signup makes patients; other roles need the master key."""
    body = req.body or {}
    unknown = sorted(set(body) - _SIGNUP_FIELDS)
    if unknown:
        raise Forbidden("Permission denied for action addField on class _User.")
    users = req.users()
    user = users.create_user(body.get("username"), body.get("password"), email=body.get("email"),
                             role=body.get("role", "patient"), actor=req.principal)
    _, token = users.start_session(user, action="signup", installation_id=req.meta.get("installation_id"))
    return Reply({"objectId": user.object_id, "createdAt": codec.iso(user.created_at), "sessionToken": token},
                 status=201, headers={"Location": f"{req.server_url}/users/{user.object_id}"})


@route("/users", "GET")
def find_users(req: NativeRequest) -> Reply:
    """Query users: a user sees only themself (enforcePrivateUsers); the master key sees all."""
    result = run_query(req.session, req.principal, "_User", query_args(req.params))
    body = {"results": result.results}
    if result.count is not None:
        body["count"] = result.count
    return Reply(body)


@route("/users/me", "GET")
def me(req: NativeRequest) -> Reply:
    """The user of the session token."""
    _require_user(req)
    return Reply(user_json(req.user, req.session_token))


@route("/users/<object_id>", "GET")
def get_user(req: NativeRequest, object_id: str) -> Reply:
    """One user (only oneself without the master key)."""
    include, keys = get_args(req.params)
    out = get_object(req.session, req.principal, "_User", object_id, include=include, keys=keys)
    if req.session_token and req.principal.user_id == object_id:
        # Parse Server forces the caller's token into their own user (ClassesRouter.handleGet): the JS SDK's
        # `Parse.User.current().fetch()` replaces the user's server data, token included, with this answer.
        out["sessionToken"] = req.session_token
    return Reply(out)


@route("/users/<object_id>", "PUT")
def update_user(req: NativeRequest, object_id: str) -> Reply:
    """Change one's username, email or password; roles change only with the master key."""
    p = req.principal
    if not p.master and p.user_id != object_id:
        raise InvalidInput("Insufficient auth.", parse_code=206)
    body = dict(req.body or {})
    if not body:
        raise InvalidInput("Nothing to update.")
    if "role" in body and not p.master:
        raise Forbidden("Only an administrator with the master key may change a role.")
    username = body.get("username")
    if isinstance(username, str) and req.session.scalar(
        select(User.object_id).where(User.username == username, User.object_id != object_id)
    ):
        raise Conflict("Account already exists for this username.", parse_code=202)
    email = body.get("email")
    if isinstance(email, str) and req.session.scalar(
        select(User.object_id).where(User.email == email, User.object_id != object_id)
    ):
        raise Conflict("Account already exists for this email address.", parse_code=203)
    password = body.pop("password", None)
    user = req.objects().load(class_spec("_User"), object_id, for_write=True)
    if password is not None:
        req.users().set_password(user, password, keep_token=req.session_token)
    if body:
        written = req.objects().update("_User", object_id, body)
        return Reply({"updatedAt": codec.iso(written.row.updated_at), **written.echo})
    return Reply({"updatedAt": codec.iso(user.updated_at)})


@route("/users/<object_id>", "DELETE")
def delete_user(req: NativeRequest, object_id: str) -> Reply:
    """Delete one's account (or any, with the master key)."""
    p = req.principal
    if not p.master and p.user_id != object_id:
        raise InvalidInput("Insufficient auth.", parse_code=206)
    req.objects().delete("_User", object_id)
    return Reply({})


@route("/login", "GET", "POST")
def login(req: NativeRequest) -> Reply:
    """Log in with username and password; answers the user with a new session token."""
    params = {**req.params, **(req.body or {})}
    user, token = req.users().login(params.get("username"), params.get("password"),
                                    installation_id=req.meta.get("installation_id"))
    return Reply(user_json(user, token))


@route("/logout", "POST")
def logout(req: NativeRequest) -> Reply:
    """End this session only (other sessions of the user stay)."""
    if req.session_token:
        req.users().logout(req.session_token)
    return Reply({})


def session_json(row, token: str | None = None) -> dict:
    out = codec.encode(class_spec("_Session"), row)
    if token:
        out["sessionToken"] = token
    return out


@route("/sessions", "GET")
def find_sessions(req: NativeRequest) -> Reply:
    """One's own sessions (all, with the master key). Tokens are stored hashed and never listed."""
    if not req.principal.master:
        _require_user(req)
    result = run_query(req.session, req.principal, "_Session", query_args(req.params))
    return Reply({"results": result.results})


@route("/sessions/me", "GET")
def current_session(req: NativeRequest) -> Reply:
    """The session of the token used."""
    _require_user(req)
    from gateway.models import Session as UserSession

    row = req.session.scalar(select(UserSession).where(UserSession.token_hash == hash_token(req.session_token)))
    return Reply(session_json(row, req.session_token))


@route("/sessions/<object_id>", "GET")
def get_session(req: NativeRequest, object_id: str) -> Reply:
    """One of one's sessions."""
    return Reply(get_object(req.session, req.principal, "_Session", object_id))


@route("/sessions/<object_id>", "DELETE")
def delete_session(req: NativeRequest, object_id: str) -> Reply:
    """End one of one's sessions."""
    req.objects().delete("_Session", object_id)
    return Reply({})
