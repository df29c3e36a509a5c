"""Change events: every committed write of a record becomes one event for live subscribers (Parse
LiveQuery, FHIR Subscriptions). Events are collected on the Session and handed to the bus only after the
transaction commits, so a rolled-back write never notifies anyone.

An event names the class, the object id, the profile and the kind of change; subscribers load what they
may see through the access policy, so an event itself carries no health data.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

_PENDING = "phr_pending_events"
_listeners: list[Callable[["ChangeEvent"], None]] = []


@dataclass(frozen=True)
class ChangeEvent:
    class_name: str
    object_id: str
    profile_id: str | None
    kind: str  # create | update | delete
    version: int

    def to_dict(self) -> dict:
        return asdict(self)


def publish(session: Session, change: ChangeEvent) -> None:
    session.info.setdefault(_PENDING, []).append(change)


def subscribe(listener: Callable[[ChangeEvent], None]) -> Callable[[], None]:
    """Register a process-wide listener (the bus); returns a function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


@sa_event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for change in pending:
        for listener in list(_listeners):
            try:
                listener(change)
            except Exception:  # a broken subscriber must never break a write that already committed
                import logging

                logging.getLogger("gateway.events").exception("event listener failed")


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction: nothing of it happened
        session.info.pop(_PENDING, None)
