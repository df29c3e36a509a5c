"""One native request, whichever form it came in: X-Parse-* headers, or the JS SDK's form (POST,
text/plain JSON body with `_method`, `_ApplicationId`, `_SessionToken`, ...)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from gateway.access import ANONYMOUS, MASTER, Principal
from gateway.caller_cache import CallerCache
from gateway.keys import is_master_key
from gateway.errors import DomainError, InvalidInput
from gateway.models import User
from gateway.services.files import FileService
from gateway.services.inputs import check_depth
from gateway.services.objects import ObjectService
from gateway.services.users import UserService

#: Body keys the JS SDK uses for what REST clients send as headers.
META_KEYS = {
    "_ApplicationId": "app_id", "_JavaScriptKey": "js_key", "_ClientKey": "client_key",
    "_RestAPIKey": "rest_key", "_MasterKey": "master_key", "_SessionToken": "session_token",
    "_InstallationId": "installation_id", "_ClientVersion": "client_version", "_method": "method",
    "_ContentType": "content_type", "_RevocableSession": None, "_context": None,
}
HEADER_KEYS = {
    "X-Parse-Application-Id": "app_id", "X-Parse-Javascript-Key": "js_key", "X-Parse-Client-Key": "client_key",
    "X-Parse-REST-API-Key": "rest_key", "X-Parse-Master-Key": "master_key",
    "X-Parse-Session-Token": "session_token", "X-Parse-Installation-Id": "installation_id",
    "X-Parse-Client-Version": "client_version",
}


class Unauthorized(DomainError):
    """Wrong or missing application keys: Parse answers 403 {"error": "unauthorized"} without a code."""

    fhir_status = 401


@dataclass
class NativeRequest:
    method: str
    path: str
    params: dict[str, Any]
    body: dict[str, Any] | None
    raw: bytes
    content_type: str | None
    meta: dict[str, str]
    config: dict[str, Any]
    session: Session
    principal: Principal = ANONYMOUS
    session_token: str | None = None
    user_id: str | None = None
    #: The app's CallerCache (gateway/caller_cache.py), when it has one.
    callers: CallerCache | None = None
    _objects: ObjectService | None = field(default=None, repr=False)

    @property
    def user(self) -> User | None:
        """The session token's user (loaded when a view needs more than its id)."""
        return self.session.get(User, self.user_id) if self.user_id else None

    # -- collaborators, built once per request --

    def users(self) -> UserService:
        return UserService(self.session, session_length=timedelta(seconds=self.config["SESSION_LENGTH_SECONDS"]))

    def files(self) -> FileService:
        return FileService(self.session, self.principal, secret=self.config["SECRET_KEY"].encode(),
                           max_size=self.config["MAX_CONTENT_LENGTH"], url_ttl=self.config["FILE_URL_TTL_SECONDS"])

    def objects(self) -> ObjectService:
        if self._objects is None:
            self._objects = ObjectService(self.session, self.principal, file_url=self.file_url)
        return self._objects

    @property
    def server_url(self) -> str:
        return self.config["BASE_URL"] + "/parse"

    def file_url(self, name: str) -> str:
        """A download URL for this caller: signed for the caller, re-checked when it is used."""
        base = f"{self.server_url}/files/{self.config.get('APP_ID') or 'phr'}/{name}"
        return f"{base}?{self.files().sign(name, self.principal.user_id)}"


def split_body(raw: bytes, content_type: str | None, *, expect_json: bool) -> tuple[dict | None, dict[str, str]]:
    """The JSON body without the SDK's meta keys, and those meta keys."""
    if not raw.strip():
        return None, {}
    looks_json = raw.lstrip()[:1] in (b"{", b"[")
    if not expect_json and not looks_json:
        return None, {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if expect_json:
            raise InvalidInput("Invalid JSON") from None
        return None, {}
    check_depth(body, "Invalid JSON: the body")
    if not isinstance(body, dict):
        if expect_json:
            raise InvalidInput("The request body must be a JSON object.")
        return None, {}
    meta = {}
    for key, name in META_KEYS.items():
        if key in body:
            value = body.pop(key)
            if name and isinstance(value, str):
                meta[name] = value
    return body, meta


def merge_meta(headers, body_meta: dict[str, str]) -> dict[str, str]:
    meta = dict(body_meta)
    for header, name in HEADER_KEYS.items():
        value = headers.get(header)
        if value:
            meta[name] = value
    return meta


def authenticate(req: NativeRequest, *, check_keys: bool = True) -> None:
    """Check the application keys, then resolve the master key or the session token into a principal."""
    cfg, meta = req.config, req.meta
    if check_keys and cfg.get("APP_ID") and meta.get("app_id") != cfg["APP_ID"]:
        raise Unauthorized("unauthorized")
    given_master = meta.get("master_key")
    if given_master:
        if not is_master_key(given_master, cfg):
            raise Unauthorized("unauthorized")
        req.principal = MASTER
        return
    if check_keys:
        expected = {"rest_key": cfg.get("REST_API_KEY"), "js_key": cfg.get("JAVASCRIPT_KEY"),
                    "client_key": cfg.get("JAVASCRIPT_KEY")}
        if any(expected.values()):
            ok = any(v and meta.get(k) and hmac.compare_digest(meta[k].encode(), v.encode())
                     for k, v in expected.items())
            if not ok:
                raise Unauthorized("unauthorized")
    token = meta.get("session_token")
    if token:
        caller = req.users().principal_for_token(token, req.callers)
        req.session_token, req.user_id, req.principal = token, caller.user_id, caller.principal


def require_master(req: NativeRequest) -> None:
    if not req.principal.master:
        raise Unauthorized("unauthorized: master key is required")
