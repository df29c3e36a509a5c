"""What one FHIR transaction Bundle costs in process: CPU ms and SQL statements per resource.

    .venv/bin/python bench/ingest_cost.py [N bundles, default 10] [--rounds R] [--by-table]

Posts N Bundles of ~100 resources (bench/generate.py's fhir_bundle, `Prefer: return=minimal`) through the
Flask test client against DATABASE_URL, after one warm-up Bundle. CPU is this process's time.process_time()
(the machine is shared: CPU time and statement counts compare fairly, wall time does not). `--rounds R`
posts R sets of N new Bundles and reports the CPU of the cheapest and the median set too: on a machine
whose speed drifts, the best of several rounds moves less than one total. Statements are
counted at the DBAPI cursor (SQLAlchemy's before_cursor_execute): a batched INSERT of many rows is one,
and so is a COPY (which psycopg runs outside SQLAlchemy's events; counted by wrapping Cursor.copy).
On a local PostgreSQL, `pg_cpu_ms_per_resource` is the CPU time of the server processes serving this
database (from /proc), the other half of what a resource costs the machine.
"""
from __future__ import annotations

import collections
import json
import os
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import event, text

import generate
from gateway import create_app
from gateway.live.server import ready_to_serve


def _kind(statement: str) -> str:
    s = " ".join(statement.split())[:120]
    m = re.match(r"(INSERT INTO|UPDATE|DELETE FROM|SELECT .*? FROM|COPY)\s+\"?(\w+)", s)
    if m:
        return f"{m.group(1).split()[0]} {m.group(2)}"
    return s.split(" ")[0] + " " + (s.split(" ")[1] if " " in s else "")


def _pg_cpu(engine) -> float | None:
    """Seconds of CPU used so far by the PostgreSQL backends connected to our database (local server)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars().all()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # not local, or gone
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10
    by_table = "--by-table" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
    app = create_app()
    # As a served worker before its first request: the validation models loaded, the loaded app moved out of
    # the collector's view (otherwise ~0.07 ms of every resource went to full collections scanning it).
    ready_to_serve()
    c = app.test_client()
    tok = c.post("/parse/users", json={"username": f"cost{random.randrange(10**9)}", "password": "x1"}).json["sessionToken"]
    headers = {"X-Parse-Session-Token": tok, "Prefer": "return=minimal"}
    bundles = [generate.fhir_bundle(random.Random(i), f"Cost{i} Patient", generate.counts(random.Random(i)))
               for i in range(n * rounds + 1)]
    bodies = [json.dumps(b) for b in bundles]
    kinds: collections.Counter[str] = collections.Counter()
    engine = app.extensions["phr_db"][0]

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        kinds[_kind(statement)] += 1

    try:
        import psycopg

        plain_copy = psycopg.Cursor.copy

        def copy(self, statement, *args, **kwargs):  # noqa: ANN001
            if counting:
                kinds[_kind(str(statement))] += 1
            return plain_copy(self, statement, *args, **kwargs)

        psycopg.Cursor.copy = copy
    except ImportError:  # SQLite only
        pass
    counting = False

    def post(body: str) -> None:
        r = c.post("/fhir", data=body, headers=headers, content_type="application/fhir+json")
        assert r.status_code == 200, (r.status_code, r.data[:500])

    post(bodies[0])  # warm-up: imports, caches, the first statements compiled
    event.listen(engine, "before_cursor_execute", count)
    counting = True
    resources = sum(len(b["entry"]) for b in bundles[1:])
    pg = _pg_cpu(engine)
    cpu, wall = time.process_time(), time.perf_counter()
    per_round = []
    for r in range(rounds):
        part = slice(1 + r * n, 1 + (r + 1) * n)
        start = time.process_time()
        for body in bodies[part]:
            post(body)
        per_round.append((time.process_time() - start) / sum(len(b["entry"]) for b in bundles[part]))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per_round.sort()
    pg = _pg_cpu(engine) - pg if pg is not None else None
    event.remove(engine, "before_cursor_execute", count)
    statements = sum(kinds.values())
    n *= rounds
    print(json.dumps({"bundles": n, "resources": resources, "cpu_ms_per_resource": round(1000 * cpu / resources, 3),
                      "round_best_cpu_ms": round(1000 * per_round[0], 3),
                      "round_median_cpu_ms": round(1000 * per_round[len(per_round) // 2], 3),
                      "wall_ms_per_resource": round(1000 * wall / resources, 3),
                      "pg_cpu_ms_per_resource": round(1000 * pg / resources, 3) if pg is not None else None,
                      "statements_per_bundle": round(statements / n, 1),
                      "statements_per_resource": round(statements / resources, 2),
                      "resources_per_cpu_second": round(resources / cpu)}))
    if by_table:
        for kind, k in kinds.most_common():
            print(f"{k / n:8.1f}  {kind}")


if __name__ == "__main__":
    main()
