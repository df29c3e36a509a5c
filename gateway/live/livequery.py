"""Parse LiveQuery, server side: one `LiveQueryClient` per WebSocket, speaking the protocol of the Parse JS
SDK's LiveQueryClient (parse-server wiki, "Parse LiveQuery Protocol Specification"):

    client: {op: connect, applicationId, javascriptKey | clientKey | restAPIKey | masterKey, sessionToken}
    server: {op: connected, clientId}
    client: {op: subscribe, requestId, query: {className, where, keys?, watch?}, sessionToken?}
    server: {op: subscribed, clientId, requestId}
    server: {op: create | update | enter | leave | delete, clientId, requestId, object, original?}
    client: {op: unsubscribe, requestId}        server: {op: unsubscribed, clientId, requestId}
    server: {op: error, code, error, reconnect, requestId?}

Matching reuses the REST face's query engine: an object matches a subscription when the query
`objectId = X AND <where>` run under the subscriber's principal returns it (gateway.services.query), so
every event passes the access policy, the object is shown exactly as the REST face would show it to that
user (file URLs signed for them, `keys` projection), and reads by someone other than the owner are audited.
The principal is resolved again for every event: a revoked or expired grant, or a logged-out session,
stops events at once.

enter/leave: each subscription keeps the ids that matched it (seeded at subscribe time). An update of an
object that matched and still matches is `update`; one that starts matching is `enter`; one that stops
matching is `leave`, sent only if the subscriber may still read the object (else nothing is sent).

`original` (update and leave): the object before the change, from the version the change replaced
(record_version), shown as the REST face shows objects to the subscriber; both events go to a subscriber
who was shown that object before. `watch` (as Parse Server 9): with a list of fields, a create or an update
is sent only when one of those fields differs from the original (a create: when one of them is set);
enter, leave and delete are not filtered.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from gateway import access, audit
from gateway.access import Principal
from gateway.errors import DomainError, Forbidden, InvalidQuery
from gateway.events import ChangeEvent
from gateway.models import RecordVersion
from gateway.native.context import NativeRequest, Unauthorized, authenticate
from gateway.schema import class_spec
from gateway.services import codec
from gateway.services.inputs import MAX_JSON_DEPTH, too_deep
from gateway.services.query import QueryArgs, Translator, exact_key, limited, project, run_query, visible
from mappings.native import comparable

log = logging.getLogger("gateway.live.livequery")

#: Connect message keys -> the REST face's request meta (gateway.native.context).
CONNECT_KEYS = {"applicationId": "app_id", "javascriptKey": "js_key", "clientKey": "client_key",
                "restAPIKey": "rest_key", "masterKey": "master_key", "sessionToken": "session_token",
                "installationId": "installation_id"}
#: Classes whose objects are accounts and sessions, not records: not offered to live queries.
NOT_LIVE = {"_User", "_Session"}
#: At most this many ids are remembered per subscription (beyond it, an unknown match counts as enter).
MAX_KNOWN = 10_000

# LiveQuery error codes, as Parse Server uses them.
NOT_CONNECTED = 2
BAD_KEYS = 4
BAD_REQUEST = 1


@dataclass
class LiveSubscription:
    request_id: int
    class_name: str  # as the client named it (aliases allowed)
    canonical: str
    where: dict[str, Any]
    keys: list[str] | None
    session_token: str | None
    known: set[str] = field(default_factory=set)
    watch: list[str] | None = None


class LiveQueryClient:
    """One WebSocket's state. `send` takes text; it may be called from the dispatcher thread too."""

    def __init__(self, hub, send: Callable[[str], None], close: Callable[[], None] | None = None):
        self.hub = hub
        self._send = send
        self._close = close
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self.client_id: str | None = None
        self.meta: dict[str, str] = {}
        self.subscriptions: dict[int, LiveSubscription] = {}

    # ---- plumbing ----

    def send(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message).decode()
        with self._send_lock:
            self._send(data)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def error(self, code: int, message: str, request_id: int | None = None, reconnect: bool = False) -> None:
        out: dict[str, Any] = {"op": "error", "code": code, "error": message, "reconnect": reconnect}
        if self.client_id:
            out["clientId"] = self.client_id
        if request_id is not None:
            out["requestId"] = request_id
        self.send(out)

    def _request(self, session: Session, meta: dict[str, str]) -> NativeRequest:
        return NativeRequest(method="GET", path="/livequery", params={}, body=None, raw=b"", content_type=None,
                             meta=meta, config=self.hub.config, session=session)

    # ---- messages from the client ----

    def handle(self, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error(BAD_REQUEST, "Invalid JSON")
            return
        if too_deep(message):
            self.error(BAD_REQUEST, f"Invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep")
            return
        if not isinstance(message, dict):
            self.error(BAD_REQUEST, "A message must be a JSON object")
            return
        op = message.get("op")
        if op == "connect":
            self.connect(message)
        elif op == "subscribe":
            self.subscribe(message)
        elif op == "unsubscribe":
            self.unsubscribe(message)
        elif op == "update":  # Parse Server accepts a re-subscribe under the same requestId
            self.unsubscribe(message, quiet=True)
            self.subscribe(message)
        else:
            self.error(BAD_REQUEST, f"Unsupported op: {op}")

    def connect(self, message: dict[str, Any]) -> None:
        meta = {name: message[key] for key, name in CONNECT_KEYS.items() if isinstance(message.get(key), str)}
        with self.hub.session() as s:
            req = self._request(s, meta)
            try:
                authenticate(req)  # the application keys exactly as the REST face checks them
            except Unauthorized:
                self.error(BAD_KEYS, "Key in request is not valid")
                return
            except DomainError as e:
                self.error(e.parse_code, e.message)
                return
            s.commit()
        self.meta = meta
        self.client_id = str(uuid.uuid4())
        self.send({"op": "connected", "clientId": self.client_id})

    def subscribe(self, message: dict[str, Any]) -> None:
        request_id = message.get("requestId")
        if not self.client_id:
            self.error(NOT_CONNECTED, "Can not find this client, make sure you connect to server before subscribing",
                       request_id if isinstance(request_id, int) else None)
            return
        if not isinstance(request_id, int):
            self.error(BAD_REQUEST, "requestId must be a number")
            return
        query = message.get("query")
        token = message.get("sessionToken") if isinstance(message.get("sessionToken"), str) else None
        try:
            if not isinstance(query, dict) or not isinstance(query.get("className"), str):
                raise InvalidQuery("query.className is required")
            spec = class_spec(query["className"])
            if spec is None or spec.name in NOT_LIVE:
                raise Forbidden(f"Live queries are not offered on class {query['className']}")
            where = query.get("where") or {}
            keys, watch = query.get("keys"), query.get("watch")
            for name, value in (("keys", keys), ("watch", watch)):
                if value is not None and not (isinstance(value, list)
                                              and all(isinstance(k, str) for k in value)):
                    raise InvalidQuery(f"query.{name} must be an array of field names")
            sub = LiveSubscription(request_id, query["className"], spec.name, where, keys, token, watch=watch)
            with self.hub.session() as s:
                p, _ = self._principal(s, sub)
                if p is None:
                    raise DomainError("Invalid session token", parse_code=209)
                sub.known = self._matching_ids(s, p, sub)
                s.commit()
        except DomainError as e:
            self.error(e.parse_code, e.message, request_id)
            return
        with self._lock:
            self.subscriptions[request_id] = sub
        self.send({"op": "subscribed", "clientId": self.client_id, "requestId": request_id})

    def unsubscribe(self, message: dict[str, Any], *, quiet: bool = False) -> None:
        request_id = message.get("requestId")
        with self._lock:
            found = self.subscriptions.pop(request_id, None) if isinstance(request_id, int) else None
        if quiet:
            return
        if found is None:
            self.error(NOT_CONNECTED, "Can not find subscription under this client with this requestId",
                       request_id if isinstance(request_id, int) else None)
            return
        self.send({"op": "unsubscribed", "clientId": self.client_id, "requestId": request_id})

    # ---- changes from the hub ----

    def deliver(self, change: ChangeEvent) -> None:
        """Send this change to each subscription it concerns, under that subscription's current access."""
        with self._lock:
            subs = [sub for sub in self.subscriptions.values() if sub.canonical == change.class_name]
        if not subs:
            return
        with self.hub.session() as s:
            for sub in subs:
                try:
                    message = self._event_for(s, sub, change)
                    s.commit()  # the audit of what this subscriber was shown
                except Exception:
                    s.rollback()
                    log.exception("live query evaluation failed")
                    continue
                if message is not None:
                    self.send({"clientId": self.client_id, "requestId": sub.request_id, **message})

    def _event_for(self, s: Session, sub: LiveSubscription, change: ChangeEvent) -> dict[str, Any] | None:
        p, req = self._principal(s, sub)
        if p is None or not p.authenticated:
            return None  # the session ended (or nobody signed in): nothing is visible, nothing is sent
        oid = change.object_id
        was_known = oid in sub.known
        if change.kind == "delete":
            sub.known.discard(oid)
            if not was_known:
                return None
            obj = self._deleted_object(s, p, sub, oid, req.file_url)
            return {"op": "delete", "object": obj} if obj is not None else None
        matching = QueryArgs(where={"$and": [{"objectId": oid}, sub.where]}, limit=1)
        found = run_query(s, p, sub.canonical, matching, req.file_url).results
        if found:
            if len(sub.known) < MAX_KNOWN or was_known:
                sub.known.add(oid)
            op = "create" if change.kind == "create" else ("update" if was_known else "enter")
            before = self._original(s, sub, change, req) if op == "update" else None
            if op in ("create", "update") and sub.watch and not _watched_changed(sub.watch, found[0], before):
                return None
            return self._message(sub, op, found[0], before)
        if not was_known:
            return None
        sub.known.discard(oid)
        # It no longer matches. A `leave` shows the object, so only to someone who may still read it.
        still = run_query(s, p, sub.canonical, QueryArgs(where={"objectId": oid}, limit=1),
                          req.file_url).results
        if not still:
            return None
        return self._message(sub, "leave", still[0], self._original(s, sub, change, req))

    # ---- helpers ----

    def _message(self, sub: LiveSubscription, op: str, obj: dict[str, Any], original: dict[str, Any] | None
                 ) -> dict[str, Any]:
        message = {"op": op, "object": self._shape(sub, project(obj, sub.keys, None))}
        if original is not None:
            message["original"] = self._shape(sub, project(original, sub.keys, None))
        return message

    @staticmethod
    def _original(s: Session, sub: LiveSubscription, change: ChangeEvent, req: NativeRequest) -> dict | None:
        """The object as it was before this change (the version it replaced), as the REST face shows it."""
        if change.kind == "create" or change.version <= 1:
            return None
        row = s.get(RecordVersion, (sub.canonical, change.object_id, change.version - 1))
        if row is None or not isinstance(row.data, dict):
            return None
        obj = {k: v for k, v in row.data.items() if k != "_fhir"}
        for name, f in class_spec(sub.canonical).fields.items():
            value = obj.get(name)
            if f.type == "File" and isinstance(value, dict) and isinstance(value.get("name"), str):
                obj[name] = {**value, "url": req.file_url(value["name"])}
        return obj

    def _principal(self, s: Session, sub: LiveSubscription) -> tuple[Principal | None, NativeRequest]:
        """The subscriber now: the subscription's session token, else the connection's credentials."""
        meta = dict(self.meta)
        if sub.session_token:
            meta["session_token"] = sub.session_token
        req = self._request(s, meta)
        try:
            authenticate(req, check_keys=False)
        except DomainError:
            return None, req
        return req.principal, req

    def _matching_ids(self, s: Session, p: Principal, sub: LiveSubscription) -> set[str]:
        if not p.authenticated:
            return set()
        spec = class_spec(sub.canonical)
        predicate = and_(Translator(s, p).where(spec, sub.where), visible(spec, p))
        with limited(s, exact_key(sub.where)):
            return set(s.scalars(select(spec.model.object_id).where(predicate).limit(MAX_KNOWN)))

    def _deleted_object(self, s: Session, p: Principal, sub: LiveSubscription, oid: str, file_url) -> dict | None:
        """The last state of a deleted object, if the subscriber may read it (deleted rows included)."""
        spec = class_spec(sub.canonical)
        model = spec.model
        row = s.scalar(select(model).where(model.object_id == oid, access.read_filter(model, p)))
        if row is None:
            return None
        profile_id = row.object_id if spec.name == "Profile" else getattr(row, "profile_id", None)
        audit.record_reads(s, p, [(spec.name, profile_id, oid)])
        return self._shape(sub, project(codec.encode(spec, row, file_url=file_url), sub.keys, None))

    @staticmethod
    def _shape(sub: LiveSubscription, obj: dict[str, Any]) -> dict[str, Any]:
        # The SDK rebuilds a Parse.Object from it: it needs the className the client subscribed to.
        return {**obj, "className": sub.class_name, "__type": "Object"}


def _watched_changed(watch: list[str], current: dict[str, Any], original: dict[str, Any] | None) -> bool:
    """Whether one of the watched fields differs between the object and its original (Parse Server compares
    the fields' values; a file by its name, whatever URL it is served under)."""
    before = original or {}
    return any(comparable(current.get(name)) != comparable(before.get(name)) for name in watch)
