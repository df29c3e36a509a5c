"""Micro-timings of the pieces of a request (CPU ms per call, in process, against the bench database).

    .venv/bin/python bench/micro.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from gateway import access, create_app
from gateway.extensions import open_session
from gateway.models import FhirResource
from gateway.services.users import UserService

RUN = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent


def timed(label: str, fn, n: int = 300) -> None:
    fn()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    print(f"{label:<40} cpu {1000 * (time.process_time() - c) / n:7.3f} ms   wall {1000 * (time.perf_counter() - t) / n:7.3f} ms")


def main() -> None:
    m = json.loads((RUN / "manifest-ours.json").read_text())
    app = create_app()
    s = open_session(app.extensions["phr_db"][1], app.config)
    users = UserService(s)
    token = m["probe"]["token"]
    _, user = users.session_for_token(token)
    p = users.principal(user)
    oid = m["fhir"]["observation"]
    timed("session_for_token", lambda: users.session_for_token(token))
    timed("principal_for_user", lambda: users.principal(user))
    timed("fhir_read_filter build", lambda: access.fhir_read_filter(p))
    stmt = lambda: select(FhirResource).where(FhirResource.resource_type == "Observation", FhirResource.id == oid,
                                              access.fhir_read_filter(p))
    timed("read stmt build", stmt)
    timed("read stmt cache key", lambda: stmt()._generate_cache_key())
    timed("read stmt execute (full)", lambda: s.execute(stmt()).all())
    plain = lambda: s.execute(select(FhirResource).where(FhirResource.resource_type == "Observation",
                                                          FhirResource.id == oid)).all()
    timed("read by pk, no rule", plain)
    timed("SELECT 1", lambda: s.execute(select(1)).all())
    s.close()


if __name__ == "__main__":
    main()
