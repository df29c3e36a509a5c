"""The workers' shared connection counts (gateway/live/balance.py), here with made-up worker pids in one
process; test_keepalive_worker.py runs them in real gunicorn workers."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.live import balance


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(balance, "_table", None)
    monkeypatch.setattr(balance, "_lock", None)
    balance.create()
    return balance


def gone_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_without_a_table_a_worker_has_no_share(monkeypatch):
    monkeypatch.setattr(balance, "_table", None)
    assert balance.join() is None


def test_each_worker_sees_the_others_counts_not_its_own(table):
    me, sibling, third = table.join(os.getpid()), table.join(os.getppid()), table.join(1)
    assert len({me.slot, sibling.slot, third.slot}) == 3
    assert me.elsewhere() == (0, 0)
    me.publish(5)
    sibling.publish(2)
    third.publish(4)
    assert me.elsewhere() == (2, 6)
    assert sibling.elsewhere() == (4, 9)
    third.leave()
    assert me.elsewhere() == (2, 2)


def test_a_worker_alone_has_no_one_to_leave_connections_to(table):
    assert table.join(os.getpid()).elsewhere() is None


def test_counts_not_written_lately_do_not_count(table, monkeypatch):
    me, sibling = table.join(os.getpid()), table.join(os.getppid())
    sibling.publish(0)
    now = balance.time.monotonic()
    monkeypatch.setattr(balance.time, "monotonic", lambda: now + balance.STALE + 1)
    assert me.elsewhere() is None  # a stuck or dead worker is not waited for


def test_the_slot_of_a_worker_that_died_is_taken_over(table):
    dead = table.join(gone_pid())
    assert table.join(os.getpid()).slot == dead.slot  # the dead worker's slot is free
    live = table.join(os.getppid())
    assert live.slot != dead.slot
    assert table.join(os.getppid()).slot == live.slot  # a worker's slot is its own


def test_more_workers_than_slots_accept_as_gunicorn_would(table, monkeypatch):
    monkeypatch.setattr(balance, "_alive", lambda pid: True)
    for pid in range(1000, 1000 + balance.SLOTS):
        assert table.join(pid) is not None
    assert table.join(99999) is None
