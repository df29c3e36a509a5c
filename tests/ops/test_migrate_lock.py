"""Migrations run once whoever starts first: `serve` and `worker` (and `db upgrade`) each apply them at start,
and in a deployment the gateway and the export worker start at the same moment on one empty database. A
PostgreSQL advisory lock makes the second wait for the first and then find nothing left to do (SQLite's
BEGIN IMMEDIATE does the same there)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from gateway.db import make_engine
from tests.conftest import DATABASES, POSTGRES_URL, schema_url
from tests.e2e.conftest import base_env

#: A child that waits for a common start time, then runs `phr-gateway db upgrade` (gateway.cli.main).
CHILD = """
import sys, time
from gateway.cli import main
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
main(["db", "upgrade"])
"""


@pytest.fixture
def empty_database(tmp_path, request):
    """An empty database of each kind (no tables at all), dropped afterwards."""
    kind = request.param
    if kind not in DATABASES:
        pytest.skip(f"{kind} is not among the test databases")
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.sqlite3'}"
        return
    schema = f"migrate_race_{os.getpid()}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema_url(POSTGRES_URL, schema)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.mark.parametrize("empty_database", ["postgresql", "sqlite"], indirect=True)
def test_two_processes_starting_at_once_both_succeed_and_migrate_once(empty_database, tmp_path):
    env = base_env(DATABASE_URL=empty_database, PHR_INSTANCE_PATH=str(tmp_path / "instance"))
    start = time.time() + 4  # both have imported the gateway by then
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(start)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    said = sorted(err.strip().splitlines()[-1] for _out, err in results)
    applied = [line for line in said if "already" not in line]
    assert len(applied) == 1, said  # one process applied the migrations; the others found them done
    assert said.count("database already at head") == 2, said
    engine = make_engine(empty_database)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    engine.dispose()
    from alembic.script import ScriptDirectory

    from gateway.migrate import alembic_config

    assert versions == [ScriptDirectory.from_config(alembic_config()).get_current_head()]
