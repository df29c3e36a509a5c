"""`_since`: only what changed after it, and what was deleted after it in the manifest's `deleted` files,
each line a transaction Bundle with one DELETE entry (Bulk Data 2.0, response - complete status, `deleted`)."""
from __future__ import annotations

import time

from gateway.db import utcnow
from tests.bulk.conftest import assert_valid_lines, export_all, parameters


def _instant() -> str:
    now = utcnow()
    time.sleep(0.01)  # later writes get a later last_updated (milliseconds)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def test_since_exports_changes_and_lists_deletions(alice, bob, fhir_master, run_worker):
    since = _instant()
    changed, removed, kept = alice.record["Observation"][:3]
    obs = alice.fhir.read(f"Observation/{changed}")
    obs["status"] = "amended"
    assert alice.fhir.put(f"Observation/{changed}", obs).status_code == 200
    assert alice.fhir.delete(f"Observation/{removed}").status_code in (200, 204)
    assert alice.fhir.delete(f"Immunization/{alice.record['Immunization'][0]}").status_code in (200, 204)

    exp = export_all(fhir_master, run_worker, params={"_since": since, "_type": "Observation,Immunization,Patient"})
    got = exp.resources()
    assert [r["id"] for r in got["Observation"]] == [changed]
    assert "Patient" not in got and "Immunization" not in got  # unchanged since
    deleted = exp.resources("deleted")
    assert set(deleted) == {"Bundle"}
    urls = sorted(e["request"]["url"] for b in deleted["Bundle"] for e in b["entry"])
    assert urls == sorted([f"Observation/{removed}", f"Immunization/{alice.record['Immunization'][0]}"])
    for b in deleted["Bundle"]:
        assert b["type"] == "transaction" and [e["request"]["method"] for e in b["entry"]] == ["DELETE"]
    assert_valid_lines(deleted["Bundle"] + got["Observation"])
    assert sum(e["count"] for e in exp.manifest["deleted"]) == 2
    assert kept not in str(got)


def test_without_since_there_is_no_deleted_list(alice, fhir_master, run_worker):
    alice.fhir.delete(f"Observation/{alice.record['Observation'][0]}")
    exp = export_all(fhir_master, run_worker, params={"_type": "Observation"})
    assert exp.manifest["deleted"] == []
    assert alice.record["Observation"][0] not in {r["id"] for r in exp.resources()["Observation"]}


def test_since_in_a_post_body_and_deletions_seen_only_by_who_may_see_them(alice, bob, run_worker):
    since = _instant()
    alice.fhir.delete(f"Observation/{alice.record['Observation'][0]}")
    bob.fhir.delete(f"Observation/{bob.record['Observation'][0]}")
    exp = export_all(bob.fhir, run_worker, "Patient/$export", method="POST",
                     parameters=parameters(_since=since, _type="Observation"))
    urls = [e["request"]["url"] for b in exp.resources("deleted").get("Bundle", []) for e in b["entry"]]
    assert urls == [f"Observation/{bob.record['Observation'][0]}"]


def test_changes_after_the_transaction_time_wait_for_the_next_export(alice, fhir_master, run_worker,
                                                                      session_factory, monkeypatch):
    """transactionTime bounds the export: a resource written while the export runs is not in it (the next
    `_since=transactionTime` export has it), so a client that chains exports misses nothing."""
    from gateway.services import bulk

    real = bulk._export_type
    late = {}

    def export_type(factory, reader, job, p, rt, *args, **kw):
        if rt == "Observation" and not late:
            obs = alice.fhir.read(f"Observation/{alice.record['Observation'][0]}")
            obs["status"] = "corrected"
            time.sleep(0.01)
            assert alice.fhir.put(f"Observation/{obs['id']}", obs).status_code == 200
            late["id"] = obs["id"]
        return real(factory, reader, job, p, rt, *args, **kw)

    monkeypatch.setattr(bulk, "_export_type", export_type)
    first = export_all(fhir_master, run_worker, params={"_type": "Observation"})
    assert late["id"] not in {r["id"] for r in first.resources()["Observation"]}
    monkeypatch.setattr(bulk, "_export_type", real)
    second = export_all(fhir_master, run_worker, params={"_type": "Observation",
                                                          "_since": first.manifest["transactionTime"]})
    [again] = second.resources()["Observation"]
    assert again["id"] == late["id"] and again["status"] == "corrected"
