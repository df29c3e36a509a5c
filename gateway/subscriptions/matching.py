"""Which Subscriptions a committed change concerns, evaluated by the FHIR search engine itself.

A resource matches a Subscription when a search with the Subscription's criteria plus `_id=<its id>`,
run by FhirReader under the Subscription owner's principal as it is now, finds it: the criteria mean
exactly what they mean in a search, and a notification goes only to someone who may see the resource at
notification time (a revoked or expired grant stops notifications at once). That search is audited like
any other read by someone other than the patient's owner.
"""
from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session

from gateway.access import MASTER, Principal, principal_for_user
from gateway.db import utcnow
from gateway.errors import InvalidInput
from gateway.events import ChangeEvent
from gateway.fhir.params import RESOURCE_TYPES
from gateway.fhir.search import CONTROL, Compiler, SearchError, parse
from gateway.models import FhirResource, FhirSubscription, User

#: Statuses under which notifications are still sent (R4: `error` means "failing", not "stopped").
LIVE_STATUSES = ("requested", "active", "error")


def parse_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    """`Observation?code=http://loinc.org|1975-2` -> ("Observation", [("code", "http://loinc.org|1975-2")])."""
    rt, _, query = criteria.strip().partition("?")
    return rt, parse_qsl(query, keep_blank_values=True)


def validate_criteria(criteria: object) -> tuple[str, list[tuple[str, str]]]:
    """Raise InvalidInput unless `criteria` is a FHIR search on a type we serve, with parameters we know
    and values we can evaluate (the same parser and compiler as a search)."""
    if not isinstance(criteria, str) or not criteria.strip():
        raise InvalidInput("Subscription.criteria is required: a search such as 'Observation?patient=123'")
    rt, items = parse_criteria(criteria)
    if "/" in rt or rt not in RESOURCE_TYPES:
        raise InvalidInput(f"Subscription.criteria: resource type '{rt}' is not served here")
    controls = sorted({k for k, _ in items if k in CONTROL})
    if controls:
        raise InvalidInput(f"Subscription.criteria: result parameters are not criteria ({', '.join(controls)})")
    try:
        parsed = parse(rt, items)
        Compiler(lambda R: true(), "").predicate(FhirResource, parsed)
    except SearchError as e:
        raise InvalidInput(f"Subscription.criteria: {e.message}") from None
    return rt, items


def affected(session: Session, change: ChangeEvent) -> list[FhirResource]:
    """The FHIR resources a native change touched: those made from the record (a Profile is a Patient and
    its blood-group Observation) and, for an emergency contact, the Patient that lists it."""
    R = FhirResource
    conds = [and_(R.class_name == change.class_name, R.source_id == change.object_id)]
    if change.class_name == "EmergencyContact" and change.profile_id:
        conds.append(and_(R.resource_type == "Patient", R.id == change.profile_id))
    return list(session.scalars(select(R).where(or_(*conds))))


def owner_principal(session: Session, sub: FhirSubscription) -> Principal | None:
    """The owner as they are now: a user's current role and provider links (their SMART token's narrowing
    kept); None when the account is gone."""
    from gateway.services.bulk import principal_from

    stored = principal_from(sub.owner or {})
    if stored.master:
        return MASTER
    if stored.user_id:
        user = session.get(User, stored.user_id)
        if user is None:
            return None
        current = principal_for_user(session, user, stored.client_id)
        return Principal(user_id=current.user_id, role=current.role, provider_ids=current.provider_ids,
                         client_id=current.client_id, smart=stored.smart)
    return stored if stored.authenticated else None


def matches(session: Session, p: Principal, base_url: str, rt: str, rid: str, items: list[tuple[str, str]]) -> bool:
    from gateway.services.fhir_read import FhirReader

    try:
        page, _ = FhirReader(session, p, base_url).search(
            rt, list(items) + [("_id", rid), ("_total", "none"), ("_count", "1")])
    except InvalidInput:  # criteria that no longer compile (a registry change): nothing matches
        return False
    return bool(page.matches)


def notifications(session: Session, change: ChangeEvent, channel_type: str, base_url: str,
                  only: set[str] | None = None) -> list[tuple[FhirSubscription, FhirResource]]:
    """(subscription, resource) pairs to notify for this change on this channel type. R4 notifies of
    resources created or updated; a deletion is no longer found by any search, so it notifies nobody."""
    if change.kind == "delete":
        return []
    resources = [r for r in affected(session, change) if not r.deleted]
    if not resources:
        return []
    S = FhirSubscription
    stmt = select(S).where(S.channel_type == channel_type, S.deleted.is_(False), S.status.in_(LIVE_STATUSES),
                           S.resource_type.in_(sorted({r.resource_type for r in resources})),
                           or_(S.end.is_(None), S.end > utcnow()))
    if only is not None:
        if not only:
            return []
        stmt = stmt.where(S.id.in_(sorted(only)))
    out = []
    for sub in session.scalars(stmt.order_by(S.id)):
        p = owner_principal(session, sub)
        if p is None:
            continue
        _, items = parse_criteria(sub.criteria)
        for r in resources:
            if r.resource_type == sub.resource_type and matches(session, p, base_url, r.resource_type, r.id, items):
                out.append((sub, r))
    return out
