"""How many connections each gunicorn worker holds, shared between the workers, so that a new connection goes
to a worker that holds fewest (gateway/live/server.py, KeepAliveThreadWorker.accept).

A keep-alive connection stays with the worker that accepted it, and a worker's Python runs on one core at
a time. Left to the kernel, a few clients' connections often land unevenly: with SO_REUSEPORT each worker
had its own socket and the kernel picked one by a hash of the connection (4 connections over 2 workers:
2-2 in 3 of 8 cases, 4-0 in 1 of 8), and on one shared socket the first worker to wake took them all. A
transaction ingest with 4 clients then ran at 2,160 resources/s with one worker doing everything and 3,165
with an even split (docs/PERFORMANCE.md, session 10).

The table is an anonymous shared mapping made by the master before it forks the workers (`create`, gunicorn's
`on_starting`); each worker takes a slot (`join`) and publishes its count on every turn of its loop and
after each accept. Slots of workers that died are taken over (their pid is gone); a slot that has not been
written for STALE seconds is not counted (a worker's loop turns at least once a second).
"""
from __future__ import annotations

import mmap
import multiprocessing
import os
import struct
import time

SLOTS = 64
STALE = 3.0
_SLOT = struct.Struct("qqd")  # pid, connections, monotonic time of the last write

_table: mmap.mmap | None = None
_lock = None


def create() -> None:
    """In the master, before the workers fork (they inherit the mapping and the lock)."""
    global _table, _lock
    _table = mmap.mmap(-1, SLOTS * _SLOT.size)
    _lock = multiprocessing.Lock()


def on_starting(_server) -> None:
    """gunicorn's `on_starting` hook (the master, before any worker)."""
    create()


class Share:
    """This worker's slot."""

    def __init__(self, table: mmap.mmap, slot: int, pid: int):
        self.table, self.slot, self.pid = table, slot, pid

    def publish(self, connections: int) -> None:
        _SLOT.pack_into(self.table, self.slot * _SLOT.size, self.pid, connections, time.monotonic())

    def elsewhere(self) -> tuple[int, int] | None:
        """(the fewest connections another live worker holds, how many they hold in all); None when no
        other worker has written lately."""
        now, counts = time.monotonic(), []
        for slot in range(SLOTS):
            if slot == self.slot:
                continue
            pid, connections, written = _SLOT.unpack_from(self.table, slot * _SLOT.size)
            if pid and now - written < STALE:
                counts.append(connections)
        return (min(counts), sum(counts)) if counts else None

    def leave(self) -> None:
        _SLOT.pack_into(self.table, self.slot * _SLOT.size, 0, 0, 0.0)


def join(pid: int | None = None) -> Share | None:
    """Take a free slot for this worker (None when the master made no table: a single-process server)."""
    if _table is None:
        return None
    pid = pid or os.getpid()
    with _lock:
        owners = [_SLOT.unpack_from(_table, slot * _SLOT.size)[0] for slot in range(SLOTS)]
        free = [slot for slot, owner in enumerate(owners) if owner == pid] or \
            [slot for slot, owner in enumerate(owners) if owner == 0 or not _alive(owner)]
        if not free:
            return None  # more workers than slots: this one accepts as gunicorn would
        share = Share(_table, free[0], pid)
        share.publish(0)
        return share


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process now holds the pid
        return False
    return True
