"""/fhir/Subscription: create, read, search, update, delete (thin views over SubscriptionService)."""
from __future__ import annotations

from email.utils import format_datetime

from flask import Response, current_app, request

from gateway.extensions import db
from gateway.fhir.auth import current_principal, require
from gateway.fhir.http import base_url, body_json, prefer, respond
from gateway.models import FhirSubscription
from gateway.subscriptions.service import SubscriptionService, render


def _service() -> SubscriptionService:
    return SubscriptionService(db.session, require(current_principal()), base_url())


def _headers(row: FhirSubscription) -> dict[str, str]:
    return {"ETag": f'W/"{row.version_id}"', "Last-Modified": format_datetime(row.last_updated, usegmt=True),
            "Location": f"{base_url()}/Subscription/{row.id}/_history/{row.version_id}"}


def _written(row: FhirSubscription, status: int) -> Response:
    from gateway.live import hub_for

    hub_for(current_app).subscriptions_changed()
    body = b"" if prefer().get("return") == "minimal" else render(row)
    return respond(body, status, _headers(row))


def read(rid: str) -> Response:
    """Read one of the caller's Subscriptions (with its status and error)."""
    row = _service().read(rid)
    db.session.commit()
    return respond(render(row), 200, {k: v for k, v in _headers(row).items() if k != "Location"})


def search(rt: str = "Subscription") -> Response:
    """The caller's Subscriptions (status, type, url, criteria, payload, _id)."""
    items = list(request.args.items(multi=True))
    if request.method == "POST":
        items += list(request.form.items(multi=True))
    rows = _service().search(items)
    db.session.commit()
    base = base_url()
    return respond({
        "resourceType": "Bundle", "type": "searchset", "total": len(rows),
        "link": [{"relation": "self", "url": request.url}],
        "entry": [{"fullUrl": f"{base}/Subscription/{r.id}", "resource": render(r), "search": {"mode": "match"}}
                  for r in rows],
    })


def create() -> Response:
    """Register a Subscription (rest-hook or websocket); it is active at once."""
    row = _service().create(body_json())
    db.session.commit()
    return _written(row, 201)


def update(rid: str) -> Response:
    """Replace a Subscription (criteria, channel, end; status requested or off)."""
    row, created = _service().update(rid, body_json())
    db.session.commit()
    return _written(row, 201 if created else 200)


def delete(rid: str) -> Response:
    """Delete a Subscription: no more notifications."""
    _service().delete(rid)
    db.session.commit()
    from gateway.live import hub_for

    hub_for(current_app).subscriptions_changed()
    return Response(status=204)
