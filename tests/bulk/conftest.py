"""Helpers for the Bulk Data tests (hl7.org/fhir/uv/bulkdata/export.html), on both databases with the Flask
test client. The worker is driven in-process with gateway.jobs.worker.run_once, so a test decides exactly
when a job runs (and can break it half-way)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy.orm import Session

from conformance.validate import validate_r4
from tests.fhir.conftest import (  # noqa: F401  (fixtures re-used here)
    Fhir, Person, alice, anonymous, assert_r4, bob, body, fhir_master, load_record, outcome, person,
)
from tests.native.conftest import (  # noqa: F401  (fixtures re-used here)
    audit_count, make_document, make_profile, make_record, ok, provider_user, rows, share, upload,
)

BASE = "http://testserver/fhir"
ASYNC = {"Prefer": "respond-async"}
NDJSON = "application/fhir+ndjson"


def relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class _SharedConnectionReader(Session):
    """The export's read-only session when every session of a test shares one connection.

    In production the reader is a connection of its own. Here it is a SAVEPOINT that the writers' savepoints
    (each file and resume point) nest inside, so rolling it back on close, as a Session does, would take
    the files with it. It never writes, so releasing it instead changes nothing else."""

    def rollback(self) -> None:
        self.commit()

    def close(self) -> None:
        if self.in_transaction():
            self.commit()
        super().close()


@pytest.fixture
def run_worker(session_factory, monkeypatch):
    """run_worker() -> how many jobs one in-process worker ran until the queue was empty."""
    from gateway.jobs.worker import run_once
    from gateway.services import bulk

    monkeypatch.setattr(bulk, "read_only_session",
                        lambda factory: _SharedConnectionReader(**{**factory.kw, "expire_on_commit": False}))

    def run(limit: int = 20) -> int:
        n = 0
        while n < limit and run_once(session_factory, BASE, "test-worker"):
            n += 1
        return n

    return run


@dataclass
class Export:
    """One export seen from the client: its status URL, and (once complete) its manifest and files."""

    fhir: Fhir
    status_url: str
    manifest: dict[str, Any] | None = None

    @property
    def path(self) -> str:
        return relative(self.status_url)

    @property
    def job_id(self) -> str:
        return self.status_url.rstrip("/").split("/")[-1]

    def poll(self, **kw):
        return self.fhir.get(self.path, **kw)

    def complete(self) -> dict[str, Any]:
        r = self.poll()
        assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:2000])
        assert r.mimetype in ("application/json", "application/fhir+json"), r.mimetype
        self.manifest = orjson.loads(r.get_data())
        return self.manifest

    def lines(self, entry: dict[str, Any], fhir: Fhir | None = None) -> list[dict[str, Any]]:
        """The parsed lines of one manifest file (fetched as the exporter unless told otherwise)."""
        r = (fhir or self.fhir).get(relative(entry["url"]), headers={"Accept": NDJSON})
        assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:2000])
        assert r.mimetype == NDJSON, r.mimetype
        raw = r.get_data()
        assert raw.endswith(b"\n") or not raw, "an NDJSON file ends with a newline"
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]

    def resources(self, kind: str = "output") -> dict[str, list[dict[str, Any]]]:
        """type -> every resource of that type across the manifest's files of `kind`."""
        out: dict[str, list[dict[str, Any]]] = {}
        for entry in (self.manifest or self.complete()).get(kind, []):
            out.setdefault(entry["type"], []).extend(self.lines(entry))
        return out


def kick_off(fhir: Fhir, path: str = "$export", params: Any = None, *, method: str = "GET",
             parameters: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
             status: int = 202):
    """Start an export; returns the Export (or, for an expected failure, the response)."""
    h = {**ASYNC, "Accept": "application/fhir+json", **(headers or {})}
    if method == "POST":
        r = fhir.post(path, parameters, headers=h, params=params)
    else:
        r = fhir.get(path, params, headers=h)
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:2000])
    if status != 202:
        return r
    location = r.headers["Content-Location"]
    assert location.startswith(BASE + "/"), location  # absolute (Bulk Data 2.0 kick-off response)
    return Export(fhir, location)


def export_all(fhir: Fhir, run_worker, path: str = "$export", params: Any = None, **kw) -> Export:
    """Kick off, run the worker, read the manifest."""
    exp = kick_off(fhir, path, params, **kw)
    run_worker()
    exp.complete()
    return exp


def assert_valid_lines(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        problems = validate_r4(resource)
        assert not problems, f"{resource.get('resourceType')}/{resource.get('id')}: " + "\n".join(problems)


def parameters(**values: Any) -> dict[str, Any]:
    """A Parameters body for a POST kick-off: name=value (a list repeats the parameter)."""
    out = []
    for name, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            out.append({"name": name, ("valueInstant" if name == "_since" else "valueString"): v})
    return {"resourceType": "Parameters", "parameter": out}
