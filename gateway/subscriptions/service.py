"""FHIR R4 Subscription resources (hl7.org/fhir/R4/subscription.html): create, read, search, update,
delete, and the server's side of their status.

A Subscription belongs to whoever created it; only that principal (or the master key) reads, changes or
deletes it, and anyone else is told it does not exist. Clients submit `requested` (or `off`); the server
makes a servable one `active`, sets `error` with a text when deliveries fail, and `off` after too many
failures in a row. Channels served: rest-hook and websocket.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from gateway.subscriptions.endpoints import endpoint_problem

import orjson
from sqlalchemy import and_, select, true
from sqlalchemy.orm import Session

from gateway import access, events
from gateway.access import Principal
from gateway.db import new_object_id, utcnow
from gateway.errors import Forbidden, Gone, InvalidInput, NotFound, Unprocessable
from gateway.fhir.extract import date_range
from gateway.models import FhirSubscription
from gateway.subscriptions.matching import validate_criteria

CHANNELS = ("rest-hook", "websocket")
CLIENT_STATUSES = ("requested", "active", "off")
PAYLOAD_TYPES = ("application/fhir+json", "application/json")
#: Search parameters of Subscription we serve (hl7.org/fhir/R4/subscription.html#search).
SEARCH_PARAMS = {
    "status": ("token", "http://hl7.org/fhir/SearchParameter/Subscription-status"),
    "type": ("token", "http://hl7.org/fhir/SearchParameter/Subscription-type"),
    "url": ("uri", "http://hl7.org/fhir/SearchParameter/Subscription-url"),
    "criteria": ("string", "http://hl7.org/fhir/SearchParameter/Subscription-criteria"),
    "payload": ("token", "http://hl7.org/fhir/SearchParameter/Subscription-payload"),
}
SERVER_ELEMENTS = ("id", "meta", "status", "error")
RESOURCE = "Subscription"


def owner_json(p: Principal) -> dict[str, Any]:
    from gateway.services.bulk import principal_json

    return principal_json(p)


def render(row: FhirSubscription) -> dict[str, Any]:
    """The resource as stored, with the server's elements: id, meta, status and error."""
    body = orjson.loads(row.body)
    out: dict[str, Any] = {"resourceType": RESOURCE, "id": row.id,
                           "meta": {"versionId": str(row.version_id), "lastUpdated": _instant(row.last_updated)}}
    out.update({k: v for k, v in body.items() if k not in SERVER_ELEMENTS and k != "resourceType"})
    out["status"] = row.status
    if row.error:
        out["error"] = row.error
    return out


def _instant(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SubscriptionService:
    def __init__(self, session: Session, principal: Principal, base_url: str):
        self.session = session
        self.p = principal
        self.base_url = base_url

    # ---- who sees what ----

    def _owned(self):
        S = FhirSubscription
        if self.p.master:
            return true()
        if self.p.user_id:
            return S.owner_user_id == self.p.user_id
        if self.p.client_id:
            return and_(S.owner_user_id.is_(None), S.owner_client_id == self.p.client_id)
        return S.id.is_(None)  # nobody signed in owns nothing

    def _load(self, rid: str) -> FhirSubscription:
        row = self.session.scalar(select(FhirSubscription).where(FhirSubscription.id == rid, self._owned()))
        if row is None:
            raise NotFound(f"Subscription/{rid} is not known")
        if row.deleted:
            raise Gone(f"Subscription/{rid} was deleted")
        return row

    # ---- interactions ----

    def read(self, rid: str) -> FhirSubscription:
        return self._load(rid)

    def search(self, items: list[tuple[str, str]]) -> list[FhirSubscription]:
        S = FhirSubscription
        conds = [S.deleted.is_(False), self._owned()]
        count = 100
        for key, value in items:
            name = key.split(":", 1)[0]
            values = [v for v in value.split(",") if v]
            if name == "_id":
                conds.append(S.id.in_(values))
            elif name == "status":
                conds.append(S.status.in_(values))
            elif name == "type":
                conds.append(S.channel_type.in_(values))
            elif name == "url":
                conds.append(S.endpoint.in_(values))
            elif name == "payload":
                conds.append(S.payload.in_(values))
            elif name == "criteria":
                conds.append(S.criteria.in_(values) if key.endswith(":exact") else S.criteria.startswith(value))
            elif name == "_count":
                count = max(0, min(int(value) if value.isdigit() else 100, 1000))
            elif name not in ("_format", "_pretty", "_total"):
                raise InvalidInput(f"Unknown search parameter '{key}' for Subscription")
        return list(self.session.scalars(select(S).where(*conds).order_by(S.last_updated.desc(), S.id).limit(count)))

    def create(self, resource: Any, rid: str | None = None) -> FhirSubscription:
        access.require_authenticated(self.p)
        fields = self._validate(resource)
        now = utcnow()
        owner = owner_json(self.p)
        row = FhirSubscription(
            id=rid or new_object_id(), version_id=1, created_at=now, last_updated=now, deleted=False, failures=0,
            owner=owner, owner_user_id=self.p.user_id,
            owner_client_id=self.p.client_id or (self.p.smart.client_id if self.p.smart else None), **fields,
        )
        self.session.add(row)
        self.session.flush()
        self._changed(row, "create")
        return row

    def update(self, rid: str, resource: Any) -> tuple[FhirSubscription, bool]:
        """Replace the client's part (criteria, channel, end, status requested/off); a new version."""
        if isinstance(resource, dict) and resource.get("id") not in (None, rid):
            raise InvalidInput(f"The resource id {resource.get('id')!r} does not match the URL ({rid})")
        existing = self.session.get(FhirSubscription, rid)
        if existing is None:
            return self.create(resource, rid), True
        row = self._load(rid)
        fields = self._validate(resource)
        for attr, value in fields.items():
            setattr(row, attr, value)
        row.error, row.failures = None, 0
        row.version_id += 1
        row.last_updated = utcnow()
        self.session.flush()
        self._changed(row, "update")
        return row, False

    def delete(self, rid: str) -> None:
        row = self._load(rid)
        row.deleted = True
        row.status = "off"
        row.version_id += 1
        row.last_updated = utcnow()
        self.session.flush()
        self._changed(row, "delete")

    # ---- the server's side of the status (rest-hook deliveries) ----

    @staticmethod
    def delivered(session: Session, rid: str) -> None:
        row = session.get(FhirSubscription, rid)
        if row is not None and (row.failures or row.status in ("error", "requested")):
            row.status, row.error, row.failures = "active", None, 0
            session.flush()

    @staticmethod
    def failed(session: Session, rid: str, text: str, max_failures: int) -> FhirSubscription | None:
        """Record a failed delivery attempt; `off` once `max_failures` attempts in a row have failed."""
        row = session.get(FhirSubscription, rid)
        if row is None or row.deleted or row.status == "off":
            return row
        row.failures += 1
        row.status = "error"
        row.error = text
        if row.failures >= max_failures:
            row.status = "off"
            row.error = f"{text}; turned off after {row.failures} failed attempts in a row"
            _publish(session, row, "update")
        session.flush()
        return row

    # ---- helpers ----

    def _changed(self, row: FhirSubscription, kind: str) -> None:
        _publish(self.session, row, kind)

    def _validate(self, resource: Any) -> dict[str, Any]:
        if not isinstance(resource, dict) or resource.get("resourceType") != RESOURCE:
            raise InvalidInput("The body must be a Subscription resource")
        problems = []
        status = resource.get("status", "requested")
        if status not in CLIENT_STATUSES:
            problems.append(f"Subscription.status: a client submits 'requested' or 'off', not {status!r}")
        if not isinstance(resource.get("reason"), str) or not resource["reason"].strip():
            problems.append("Subscription.reason is required")
        channel = resource.get("channel")
        if not isinstance(channel, dict):
            raise Unprocessable("Subscription.channel is required", [_issue("Subscription.channel is required")])
        ctype = channel.get("type")
        if ctype not in CHANNELS:
            problems.append(f"Subscription.channel.type {ctype!r} is not served here (served: {', '.join(CHANNELS)})")
        endpoint = channel.get("endpoint")
        if ctype == "rest-hook":
            parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append("Subscription.channel.endpoint must be an http(s) URL for a rest-hook")
            else:
                why = endpoint_problem(endpoint)
                if why:
                    problems.append(f"Subscription.channel.endpoint is refused: {why}")
        payload = channel.get("payload")
        if payload is not None and payload not in PAYLOAD_TYPES:
            problems.append(f"Subscription.channel.payload {payload!r} is not served (use application/fhir+json)")
        headers = channel.get("header")
        if headers is not None and not (isinstance(headers, list) and all(
                isinstance(h, str) and ":" in h and h.split(":", 1)[0].strip() for h in headers)):
            problems.append("Subscription.channel.header must be strings like 'Authorization: Bearer ...'")
        end = None
        if resource.get("end") is not None:
            rng = date_range(resource["end"]) if isinstance(resource["end"], str) else None
            if rng is None:
                problems.append("Subscription.end must be an instant")
            else:
                end = rng[0]
        try:
            rt, _ = validate_criteria(resource.get("criteria"))
        except InvalidInput as e:
            problems.append(e.message)
            rt = None
        if problems:
            raise Unprocessable("The Subscription is not valid", [_issue(p) for p in problems])
        if not access.smart_permits(self.p, rt, "s"):
            raise Forbidden(f"The token's scopes do not allow searching {rt}")
        body = {k: v for k, v in resource.items() if k not in SERVER_ELEMENTS}
        return {
            # Served at once: nothing has to be set up before notifications can flow.
            "status": "off" if status == "off" else "active",
            "criteria": resource["criteria"].strip(), "resource_type": rt, "channel_type": ctype,
            "endpoint": endpoint if isinstance(endpoint, str) else None, "payload": payload,
            "headers": list(headers) if headers else None, "end": end, "error": None,
            "body": orjson.dumps(body).decode(),
        }


def _issue(text: str) -> dict[str, str]:
    return {"severity": "error", "code": "invalid", "diagnostics": text}


def _publish(session: Session, row: FhirSubscription, kind: str) -> None:
    """Every process keeps track of whether rest-hook Subscriptions exist (gateway.live.hub)."""
    events.publish(session, events.ChangeEvent("Subscription", row.id, None, kind, row.version_id))
