"""A worker killed mid-export loses nothing (issue 7): every file is committed together with the job's
resume point, another worker claims the job once its heartbeat is stale, and goes on after the last file.
No line is lost, none is duplicated."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from gateway.db import make_engine, utcnow
from gateway.jobs.worker import run_once
from gateway.models import ExportFile, ExportJob
from gateway.services import bulk
from tests.bulk.conftest import BASE, export_all, kick_off
from tests.conftest import fresh_database


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so the runner's per-type error handling does not see it."""


def _age_heartbeat(session, job_id: str) -> None:
    session.execute(update(ExportJob).where(ExportJob.id == job_id).values(
        heartbeat_at=utcnow() - bulk.STALE_AFTER - timedelta(seconds=1)))
    session.commit()


def _ids(exp) -> collections.Counter:
    return collections.Counter((r["resourceType"], r["id"]) for rs in exp.resources().values() for r in rs)


def test_a_killed_worker_is_taken_over_without_loss_or_duplicates(alice, bob, fhir_master, run_worker,
                                                                  session_factory, db_session, monkeypatch):
    expected = _ids(export_all(fhir_master, run_worker, params={"_type": "Patient,Observation,Immunization"}))
    assert sum(expected.values()) == 11  # 2 patients, 6 labs, 3 immunizations

    monkeypatch.setattr(bulk, "FILE_LINES", 2)
    exp = kick_off(fhir_master, params={"_type": "Patient,Observation,Immunization"})
    real = bulk._write_file
    calls = []

    def dies_on_the_second_file(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(*args, **kw)

    monkeypatch.setattr(bulk, "_write_file", dies_on_the_second_file)
    with pytest.raises(Killed):
        run_worker()
    monkeypatch.setattr(bulk, "_write_file", real)

    job = db_session.get(ExportJob, exp.job_id)
    db_session.refresh(job)
    assert job.status == "running" and job.claimed_by == "test-worker"
    assert db_session.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == job.id)) == 1
    assert exp.poll().status_code == 202

    # Its heartbeat is fresh: nobody else may take it yet.
    assert not run_once(session_factory, BASE, "second-worker")
    _age_heartbeat(db_session, exp.job_id)
    assert run_once(session_factory, BASE, "second-worker")

    db_session.refresh(job)
    assert job.status == "completed" and job.claimed_by == "second-worker" and job.attempts == 2
    m = exp.complete()
    assert m["error"] == []
    for entry in m["output"]:
        assert entry["count"] == len(exp.lines(entry)) <= 2
    got = _ids(exp)
    assert got == expected  # same resources, each exactly once
    assert sum(e["count"] for e in m["output"]) == sum(expected.values())


def test_a_worker_that_was_taken_over_stops_writing(alice, bob, fhir_master, session_factory, db_session,
                                                    run_worker, monkeypatch):
    """A worker that only looked dead (paused past STALE_AFTER) must not write on beside its successor."""
    monkeypatch.setattr(bulk, "FILE_LINES", 1)
    exp = kick_off(fhir_master, params={"_type": "Observation"})
    real = bulk._write_file
    calls = []

    def paused_then_overtaken(factory, job_id, *args, **kw):
        calls.append(1)
        if len(calls) == 2:  # the first worker stalls; a second one claims the stale job meanwhile
            _age_heartbeat(db_session, job_id)
            assert bulk.claim_next(session_factory, "second-worker") == job_id
        return real(factory, job_id, *args, **kw)

    monkeypatch.setattr(bulk, "_write_file", paused_then_overtaken)
    run_worker()  # the first worker's write is refused: it stops
    assert db_session.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == exp.job_id)) == 1
    monkeypatch.setattr(bulk, "_write_file", real)
    bulk.run_job(session_factory, exp.job_id, "second-worker", BASE)
    m = exp.complete()
    ids = [r["id"] for r in exp.resources()["Observation"]]
    assert len(ids) == len(set(ids)) == sum(e["count"] for e in m["output"])
    assert sorted(ids) == sorted(alice.record["Observation"] + bob.record["Observation"])


def test_a_job_that_keeps_failing_ends_with_an_operation_outcome(alice, fhir_master, db_session, session_factory,
                                                                 run_worker):
    exp = kick_off(fhir_master, params={"_type": "Patient"})
    db_session.execute(update(ExportJob).where(ExportJob.id == exp.job_id).values(
        status="running", claimed_by="dead", attempts=bulk.MAX_ATTEMPTS))
    db_session.commit()
    _age_heartbeat(db_session, exp.job_id)
    assert run_worker() == 1
    m = exp.complete()
    assert m["output"] == [] and len(m["error"]) == 1
    [problem] = exp.lines(m["error"][0])
    assert problem["resourceType"] == "OperationOutcome"


# ---- a real worker process, killed with SIGKILL ----

WORKER = """
import sys, time
from gateway.services import bulk
bulk.FILE_LINES = 2
real = bulk._write_file
def slow(*args, **kw):
    time.sleep(0.3)  # time for the test to see the first file and kill us
    return real(*args, **kw)
bulk._write_file = slow
from gateway.cli import main
main(["worker"])
"""


@pytest.fixture
def file_app(tmp_path_factory, tmp_path):
    """An app on a SQLite file of its own (real commits), so that a worker process can share it."""
    from gateway import create_app
    from tests.conftest import APP_ID, MASTER_KEY

    url = fresh_database("sqlite", tmp_path_factory, "killed_worker")
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "instance"), "APP_ID": APP_ID,
                      "MASTER_KEY": MASTER_KEY, "BASE_URL": "http://testserver", "TESTING": True})
    yield app, url
    app.extensions["phr_db"][0].dispose()


def test_a_worker_process_killed_with_sigkill(file_app, tmp_path):
    from tests.conftest import Parse
    from tests.fhir.conftest import Fhir, Person, load_record

    app, url = file_app
    client = app.test_client()
    r = Parse(client).post("/users", {"username": "kim", "password": "pw-123456"})
    kim = load_record(Person(r.json["objectId"], None, Fhir(client, r.json["sessionToken"])), labs=9, vaccines=3)
    master = Fhir(client, master=True)
    exp = kick_off(master, params={"_type": "Observation,Immunization,Patient"})
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)

    env = {k: v for k, v in os.environ.items() if not (k.startswith("PHR_") or k == "DATABASE_URL")}
    env.update(DATABASE_URL=url, PHR_INSTANCE_PATH=str(tmp_path / "instance"), PHR_BASE_URL="http://testserver",
               PHR_MASTER_KEY="x", PHR_APP_ID="x")
    proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        files = 0
        while time.monotonic() < deadline and files == 0 and proc.poll() is None:
            time.sleep(0.05)
            with factory() as s:
                files = s.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == exp.job_id))
        assert files >= 1, proc.stderr.read().decode()[-3000:] if proc.poll() is not None else "no file in 30 s"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stderr.close()
    with factory() as s:
        job = s.get(ExportJob, exp.job_id)
        assert job.status == "running"  # it died mid-export
        written = s.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == exp.job_id))
        assert 1 <= written < 7  # 13 resources in files of 2: it was killed part-way
        _age_heartbeat(s, exp.job_id)
    assert run_once(factory, BASE, "survivor")
    m = exp.complete()
    got = collections.Counter((r["resourceType"], r["id"]) for rs in exp.resources().values() for r in rs)
    want = collections.Counter([("Patient", kim.patient_id)] + [(rt, i) for rt in ("Observation", "Immunization")
                                                               for i in kim.record[rt]])
    assert got == want
    assert sum(e["count"] for e in m["output"]) == 13
    engine.dispose()
