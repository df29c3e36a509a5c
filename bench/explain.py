"""EXPLAIN ANALYZE every SQL statement one FHIR/native request runs (in process, against the bench database).

    .venv/bin/python bench/explain.py '/fhir/Observation?patient=<id>&_count=20' [token]
Prints each statement's execution time and plan head; `-v` prints whole plans.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from gateway import create_app

RUN = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv
    m = json.loads((RUN / "manifest-ours.json").read_text())
    path = args[0].replace("{patient}", m["fhir"]["patient"]).replace("{big}", m["big"]["profile"]) \
        .replace("{obs}", m["fhir"]["observation"]).replace("{profile}", m["probe"]["profile"]) \
        .replace("{allergy}", m["probe"]["allergy"])
    token = args[1] if len(args) > 1 else (m["big"]["token"] if "{big}" in args[0] else m["probe"]["token"])
    app = create_app()
    engine = app.extensions["phr_db"][0]
    seen = []

    @event.listens_for(engine, "after_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not statement.startswith("EXPLAIN"):
            seen.append((statement, parameters))

    # Prepared reads (gateway/services/prepared.py) run on the driver, past SQLAlchemy's events.
    import psycopg

    plain_execute = psycopg.Cursor.execute

    def execute(self, query, params=None, **kwargs):  # noqa: ANN001
        text = str(query)
        if capturing and text.lstrip().upper().startswith(("SELECT", "WITH")) \
                and (not seen or seen[-1][0] != text or seen[-1][1] != params):
            seen.append((text, params))
        return plain_execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute
    capturing = True
    c = app.test_client()
    r = c.get(path, headers={"X-Parse-Session-Token": token})
    capturing = False
    print(r.status_code, len(r.data), "bytes")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for statement, params in seen:
            cur = raw.cursor()
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plan = [row[0] for row in cur.fetchall()]
            print("----", " ".join(statement.split())[:160])
            print("\n".join(plan if verbose else [p for p in plan if "Execution Time" in p or "Planning Time" in p]
                            + plan[:3]))


if __name__ == "__main__":
    main()
