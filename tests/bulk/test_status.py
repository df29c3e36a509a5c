"""Status polling, the manifest, cancel, the files and their expiry (Bulk Data 2.0 export.html#bulk-data-
status-request, #bulk-data-delete-request, #file-request)."""
from __future__ import annotations

from datetime import timedelta

import orjson
from sqlalchemy import func, select, update

from gateway.db import utcnow
from gateway.models import ExportFile, ExportJob
from gateway.services import bulk
from tests.bulk.conftest import BASE, NDJSON, assert_valid_lines, export_all, kick_off, relative
from tests.fhir.conftest import Fhir, outcome


def _age_last_poll(db_session, job_id: str) -> None:
    """Pretend the last poll was long ago (instead of sleeping past the minimum interval)."""
    db_session.execute(update(ExportJob).where(ExportJob.id == job_id).values(
        last_polled_at=utcnow() - timedelta(seconds=5)))
    db_session.commit()


def test_in_progress_is_202_with_progress_and_retry_after(alice, fhir_master, db_session):
    exp = kick_off(fhir_master)
    r = exp.poll()
    assert r.status_code == 202
    assert r.headers["X-Progress"] and int(r.headers["Retry-After"]) >= 1
    assert not r.get_data()  # no manifest yet


def test_polling_too_fast_is_429(alice, fhir_master, db_session):
    exp = kick_off(fhir_master)
    assert exp.poll().status_code == 202
    r = exp.poll()
    outcome(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    _age_last_poll(db_session, exp.job_id)
    assert exp.poll().status_code == 202


def test_manifest(alice, bob, fhir_master, run_worker, db_session):
    exp = kick_off(fhir_master)
    exp.poll()
    run_worker()
    r = exp.poll()  # a finished job may be polled at once
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers.get("Expires")
    m = orjson.loads(r.get_data())
    assert m["transactionTime"].endswith("Z")
    assert m["request"] == f"{BASE}/$export"
    assert m["requiresAccessToken"] is True
    assert m["error"] == [] and m["deleted"] == []
    assert {o["type"] for o in m["output"]} >= {"Patient", "Observation", "Immunization", "AllergyIntolerance",
                                                  "MedicationStatement"}
    assert "Binary" not in {o["type"] for o in m["output"]}
    for entry in m["output"]:
        assert entry["url"].startswith(f"{BASE}/bulk/{exp.job_id}/file/")
        lines = exp.lines(entry)
        assert len(lines) == entry["count"] > 0
        assert {line["resourceType"] for line in lines} == {entry["type"]}  # one type per file
        assert_valid_lines(lines)
    patients = exp.resources()["Patient"]
    assert sorted(p["id"] for p in patients) == sorted([alice.patient_id, bob.patient_id])
    assert sorted(o["id"] for o in exp.resources()["Observation"]) == sorted(
        alice.record["Observation"] + bob.record["Observation"])


def test_files_need_the_exporters_credentials(alice, bob, client, run_worker):
    exp = export_all(alice.fhir, run_worker, "Patient/$export")
    entry = exp.manifest["output"][0]
    ok = alice.fhir.get(relative(entry["url"]))
    assert ok.status_code == 200 and ok.mimetype == NDJSON
    # a file response: never sniffed into something a browser runs (issue 21)
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert ok.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    outcome(Fhir(client).get(relative(entry["url"])), 401)  # no credentials
    outcome(bob.fhir.get(relative(entry["url"])), 404)  # someone else's export does not exist for bob
    outcome(bob.fhir.get(exp.path), 404)
    outcome(bob.fhir.delete(exp.path), 404)
    outcome(alice.fhir.get(relative(entry["url"]).rsplit("/", 1)[0] + "/nosuchfile"), 404)


def test_files_of_an_unfinished_export_are_not_served(alice, fhir_master, db_session):
    exp = kick_off(fhir_master)
    outcome(fhir_master.get(exp.path + "/file/whatever"), 404)


def test_delete_cancels(alice, fhir_master, run_worker, db_session):
    exp = export_all(fhir_master, run_worker)
    r = fhir_master.delete(exp.path)
    assert r.status_code == 202
    outcome(exp.poll(), 404)
    outcome(fhir_master.get(relative(exp.manifest["output"][0]["url"])), 404)
    assert db_session.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == exp.job_id)) == 0
    outcome(fhir_master.delete(exp.path), 404)  # already gone


def test_delete_stops_a_queued_export(alice, fhir_master, run_worker, db_session):
    exp = kick_off(fhir_master)
    assert fhir_master.delete(exp.path).status_code == 202
    assert run_worker() == 0  # nothing left to claim
    outcome(exp.poll(), 404)


def test_cancel_while_running_stops_at_the_next_file(alice, bob, fhir_master, run_worker, db_session,
                                                      monkeypatch, session_factory):
    """The runner checks for cancellation with every file it commits; nothing more is written after it."""
    monkeypatch.setattr(bulk, "FILE_LINES", 1)
    exp = kick_off(fhir_master, params={"_type": "Observation"})
    real = bulk._write_file
    calls = []

    def write_and_cancel(factory, job_id, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            with session_factory() as s:
                bulk.cancel(s, bulk.principal_from({"master": True}), job_id)
                s.commit()
        return real(factory, job_id, *args, **kw)

    monkeypatch.setattr(bulk, "_write_file", write_and_cancel)
    run_worker()
    assert len(calls) == 2  # it stopped instead of writing the other files
    outcome(exp.poll(), 404)
    assert db_session.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == exp.job_id)) == 0


def test_expired_exports_are_cleaned_up(alice, fhir_master, run_worker, db_session):
    exp = export_all(fhir_master, run_worker)
    kept = export_all(fhir_master, run_worker, params={"_type": "Patient"})
    cancelled = kick_off(fhir_master)
    fhir_master.delete(cancelled.path)
    assert bulk.cleanup_expired(db_session) >= 1  # the cancelled one's files (none) at least
    db_session.commit()
    assert exp.poll().status_code == 200 and kept.poll().status_code == 200  # not expired yet

    later = utcnow() + bulk.EXPORT_TTL + timedelta(minutes=1)
    assert bulk.cleanup_expired(db_session, now=later) >= 2
    db_session.commit()
    for job_id in (exp.job_id, kept.job_id, cancelled.job_id):
        assert db_session.get(ExportJob, job_id) is None
        assert db_session.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == job_id)) == 0
    outcome(exp.poll(), 404)


def test_an_expired_export_answers_404_before_cleanup(alice, fhir_master, run_worker, db_session):
    exp = export_all(fhir_master, run_worker)
    db_session.execute(update(ExportJob).where(ExportJob.id == exp.job_id).values(
        expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    outcome(exp.poll(), 404)
    outcome(fhir_master.get(relative(exp.manifest["output"][0]["url"])), 404)


def test_a_failing_type_becomes_an_operation_outcome(alice, fhir_master, run_worker, monkeypatch):
    """One type failing does not sink the export: its error is a file of the manifest's error list."""
    real = bulk._select

    def broken(job, p, rt, *args, **kw):
        if rt == "Immunization":
            raise RuntimeError("disk on fire")
        return real(job, p, rt, *args, **kw)

    monkeypatch.setattr(bulk, "_select", broken)
    exp = export_all(fhir_master, run_worker, params={"_type": "Patient,Immunization"})
    assert {o["type"] for o in exp.manifest["output"]} == {"Patient"}
    assert len(exp.manifest["error"]) == 1
    [problem] = exp.lines(exp.manifest["error"][0])
    assert problem["resourceType"] == "OperationOutcome" and "Immunization" in problem["issue"][0]["diagnostics"]
    assert "disk on fire" not in orjson.dumps(problem).decode()  # internals stay hidden
    assert_valid_lines([problem])
