"""Accounts and sessions: signup, login, logout, `r:` session tokens with expiry."""
from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import and_, delete as sql_delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from gateway import access, audit
from gateway.access import MASTER, Principal, principal_for_user
from gateway.caller_cache import Caller, CallerCache, remembered
from gateway.db import new_object_id, utcnow
from gateway.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, ValidationFailed
from gateway.models import Profile, Provider, User
from gateway.models.user import ROLES, Session as UserSession
from gateway.ops.metrics import login_failed

#: werkzeug's default (scrypt) in production; the test suite sets a cheap method through the environment
#: so that thousands of signups do not dominate its run time.
PASSWORD_METHOD = os.environ.get("PHR_PASSWORD_HASH_METHOD") or "scrypt"
DEFAULT_SESSION_LENGTH = timedelta(days=365)  # Parse Server's default sessionLength
# A hash to compare against when the user does not exist, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("phr-gateway-timing-equaliser", method=PASSWORD_METHOD)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_token() -> str:
    return "r:" + secrets.token_hex(16)


class UserService:
    def __init__(self, session: Session, *, session_length: timedelta = DEFAULT_SESSION_LENGTH,
                 now: Callable[[], datetime] = utcnow):
        self.session = session
        self.session_length = session_length
        self.now = now

    def create_user(self, username: Any, password: Any, *, email: Any = None, role: str = "patient",
                    actor: Principal = MASTER) -> User:
        """Make an account. Public signup passes role patient; other roles need the master key or the CLI."""
        if not isinstance(username, str) or not username.strip() or len(username) > 150 or "\x00" in username:
            raise InvalidInput("bad or missing username", parse_code=200)
        if not isinstance(password, str) or not password:
            raise InvalidInput("password is required", parse_code=201)
        if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > 254
                                  or "\x00" in email):
            raise InvalidInput("Email address format is invalid.", parse_code=125)
        if role not in ROLES:
            raise ValidationFailed(f"role must be one of: {', '.join(ROLES)}")
        if role != "patient" and not actor.master:
            raise Forbidden("Only patients may sign up; provider and admin accounts are made by an administrator.")
        if self.session.scalar(select(User.object_id).where(User.username == username)):
            raise Conflict("Account already exists for this username.", parse_code=202)
        if email and self.session.scalar(select(User.object_id).where(func.lower(User.email) == email.lower())):
            raise Conflict("Account already exists for this email address.", parse_code=203)
        now = self.now()
        user = User(object_id=new_object_id(), created_at=now, updated_at=now, version=1, username=username,
                    password_hash=generate_password_hash(password, method=PASSWORD_METHOD), email=email, role=role)
        user.acl = {user.object_id: {"read": True, "write": True}}
        self.session.add(user)
        self.session.flush()
        audit.record(self.session, Principal(user_id=user.object_id, role=role), "signup", "_User", user.object_id)
        return user

    def set_password(self, user: User, password: Any, *, keep_token: str | None = None) -> None:
        if not isinstance(password, str) or not password:
            raise InvalidInput("password is required", parse_code=201)
        user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        user.updated_at = self.now()
        # A new password ends every other session, as a careful product does; the one in use stays.
        stmt = sql_delete(UserSession).where(UserSession.user_id == user.object_id)
        if keep_token:
            stmt = stmt.where(UserSession.token_hash != hash_token(keep_token))
        self.session.execute(stmt)

    def start_session(self, user: User, *, action: str, installation_id: str | None = None) -> tuple[UserSession, str]:
        if installation_id is not None and (len(installation_id) > 64 or "\x00" in installation_id):
            raise InvalidInput("Invalid installation id.")
        token = new_session_token()
        now = self.now()
        s = UserSession(
            object_id=new_object_id(), created_at=now, updated_at=now, version=1, token_hash=hash_token(token),
            user_id=user.object_id, expires_at=now + self.session_length, installation_id=installation_id,
            created_with={"action": action, "authProvider": "password"}, restricted=False,
            acl={user.object_id: {"read": True, "write": True}},
        )
        self.session.add(s)
        self.session.flush()
        return s, token

    def login(self, username: Any, password: Any, *, installation_id: str | None = None) -> tuple[User, str]:
        if not isinstance(username, str) or not username:
            raise InvalidInput("username/email is required.", parse_code=200)
        if not isinstance(password, str) or not password:
            raise InvalidInput("password is required.", parse_code=201)
        # A NUL cannot be in a stored name (and PostgreSQL refuses it in a query): no such user.
        user = None if "\x00" in username else self.session.scalar(select(User).where(User.username == username))
        if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password) or user is None:
            login_failed("api")
            raise NotFound("Invalid username/password.")
        _, token = self.start_session(user, action="login", installation_id=installation_id)
        audit.record(self.session, Principal(user_id=user.object_id, role=user.role), "login", "_User", user.object_id)
        return user, token

    def session_for_token(self, token: str) -> tuple[UserSession, User]:
        """The live session and its user, or Unauthenticated (Parse 209)."""
        row = self.session.execute(
            select(UserSession, User).join(User, User.object_id == UserSession.user_id)
            .where(UserSession.token_hash == hash_token(token))
        ).first()
        if row is None or row[0].expires_at <= self.now():
            raise Unauthenticated("Invalid session token")
        return row[0], row[1]

    def principal_for_token(self, token: str, cache: CallerCache | None = None) -> Caller:
        """Who a session token belongs to: its user, the providers the user acts for and the profiles it
        owns (kept in session.info for the audit's 'is this the owner' test, audit.record_reads). The
        per-request lookup of every authenticated call: one round trip, or none within the cache's life
        (gateway/caller_cache.py says when an entry is dropped)."""
        token_hash, now = hash_token(token), self.now()
        caller = remembered(cache, ("session", token_hash), now, lambda: self._caller(token_hash, now))
        access.learn_ownership(self.session, caller.user_id, caller.owned_profiles, caller.live_profiles)
        return caller

    def _caller(self, token_hash: str, now: datetime) -> Caller:
        rows = self.session.execute(
            select(UserSession.expires_at, User.object_id, User.role, Provider.object_id, Profile.object_id,
                   Profile.deleted_at)
            .join(User, User.object_id == UserSession.user_id)
            .outerjoin(Provider, and_(Provider.user_id == User.object_id, Provider.deleted_at.is_(None)))
            .outerjoin(Profile, Profile.user_id == User.object_id)
            .where(UserSession.token_hash == token_hash)
        ).all()
        if not rows or rows[0][0] <= now:
            raise Unauthenticated("Invalid session token")
        expires_at, user_id, role = rows[0][0], rows[0][1], rows[0][2]
        principal = Principal(user_id=user_id, role=role, provider_ids=frozenset(r[3] for r in rows if r[3]))
        return Caller(principal=principal, user_id=user_id, expires_at=expires_at,
                      owned_profiles=frozenset(r[4] for r in rows if r[4]),
                      live_profiles=frozenset(r[4] for r in rows if r[4] and r[5] is None),
                      tags=frozenset({f"user:{user_id}"}))

    def logout(self, token: str) -> None:
        sess, user = self.session_for_token(token)
        self.session.delete(sess)
        self.session.flush()
        audit.record(self.session, Principal(user_id=user.object_id, role=user.role), "logout", "_Session",
                     sess.object_id)

    def principal(self, user: User, client_id: str | None = None) -> Principal:
        return principal_for_user(self.session, user, client_id)
