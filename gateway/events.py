"""Change events: every committed write of a record becomes one event for live subscribers (Parse
LiveQuery, FHIR Subscriptions). Events are collected on the Session and handed to the bus only after the
transaction commits, so a rolled-back write never notifies anyone.

An event names the class, the object id, the profile and the kind of change; subscribers load what they
may see through the access policy, so an event itself carries no health data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "phr_pending_events"
#: (listener, engine or None): a listener given an engine hears only commits of sessions bound to it.
_listeners: list[tuple[Callable[["ChangeEvent"], None], object]] = []


@dataclass(frozen=True)
class ChangeEvent:
    class_name: str
    object_id: str
    profile_id: str | None
    kind: str  # create | update | delete
    version: int

    def to_dict(self) -> dict:
        # By hand: dataclasses.asdict copies recursively, and a Bundle's commit makes one per resource.
        return {"class_name": self.class_name, "object_id": self.object_id, "profile_id": self.profile_id,
                "kind": self.kind, "version": self.version}


def publish(session: Session, change: ChangeEvent) -> None:
    # Remember the innermost transaction (a SAVEPOINT when there is one): when it rolls back, the change
    # never happened and is dropped (a failed /batch operation, a refused bundle entry); see _discard.
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((tx, change))


def pending(session: Session) -> list[ChangeEvent]:
    """The changes of the session's transaction so far, less those of rolled-back SAVEPOINTs (for a bus
    that sends them inside the transaction, as PostgreSQL's NOTIFY does)."""
    return [change for _tx, change in session.info.get(_PENDING, ())]


def subscribe(listener: Callable[[ChangeEvent], None], *, engine=None) -> Callable[[], None]:
    """Register a process-wide listener (the bus); returns a function that removes it. With `engine`, the
    listener hears only commits of sessions bound to that engine (one app's, when a process holds several)."""
    entry = (listener, engine)
    _listeners.append(entry)
    return lambda: _listeners.remove(entry) if entry in _listeners else None


def _engine_of(session: Session):
    try:
        bind = session.get_bind()
    except Exception:  # noqa: BLE001 - an unbound session: only engine-less listeners hear it
        return None
    return getattr(bind, "engine", bind)


@sa_event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released: its changes wait for the real commit
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    engine = _engine_of(session) if any(e is not None for _, e in _listeners) else None
    for _tx, change in pending:
        for listener, only in list(_listeners):
            if only is not None and only is not engine:
                continue
            try:
                listener(change)
            except Exception:  # a broken subscriber must never break a write that already committed
                import logging

                logging.getLogger("gateway.events").exception("event listener failed")


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the outermost transaction: nothing of it happened
        session.info.pop(_PENDING, None)
        return
    pending = session.info.get(_PENDING)
    if pending:  # a SAVEPOINT rolled back: drop what was published inside it (or inside its children)
        pending[:] = [(tx, c) for tx, c in pending if not _inside(tx, previous_transaction)]


def _inside(tx: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while tx is not None:
        if tx is ancestor:
            return True
        tx = tx.parent
    return False
