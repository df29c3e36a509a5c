"""Instructions one ingested resource costs the gateway, counted by callgrind: the same number on every run.

    DATABASE_URL=... .venv/bin/python bench/ingest_instructions.py [M bundles, default 2]

On a machine whose speed drifts (docs/PERFORMANCE.md, sessions 8 and 9: the same code 0.50-0.78 ms of CPU
per resource within an hour), CPU time cannot tell a 3 % change; an instruction count can (two runs of the
same code agree to 0.05 %), and it does not care what else the machine is doing, so variants can be
counted side by side. It re-runs itself under `valgrind --tool=callgrind` (Debian's valgrind), sets up as
ingest_cost.py does (app, worker warm-up, an account, three warm-up Bundles), then posts M new Bundles
inside functools.reduce, the one C function callgrind is told to count within: only those requests are
counted (our process; PostgreSQL's work is not in it). About 40 s per Bundle. Instructions are not time
(a cache miss costs more than an add), so confirm a change that counts less with ingest_cost.py rounds.
"""
from __future__ import annotations

import functools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(m: int) -> None:
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    import generate
    from gateway import create_app
    from gateway.live.server import ready_to_serve

    app = create_app()
    ready_to_serve()
    client = app.test_client()
    token = client.post("/parse/users", json={"username": f"instr{random.randrange(10**9)}",
                                              "password": "x1"}).json["sessionToken"]
    headers = {"X-Parse-Session-Token": token, "Prefer": "return=minimal"}
    bundles = [generate.fhir_bundle(random.Random(i), f"Instr{i} Patient", generate.counts(random.Random(i)))
               for i in range(m + 3)]
    bodies = [json.dumps(b) for b in bundles]

    def post(_: None, body: str) -> None:
        r = client.post("/fhir", data=body, headers=headers, content_type="application/fhir+json")
        assert r.status_code == 200, (r.status_code, r.data[:500])

    for body in bodies[:3]:
        post(None, body)
    functools.reduce(post, bodies[3:], None)  # counted
    print(json.dumps({"resources": sum(len(b["entry"]) for b in bundles[3:])}))


def main() -> None:
    m = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    if os.environ.get("_INGEST_INSTRUCTIONS_INSIDE"):
        measure(m)
        return
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
             f"--callgrind-out-file={tmp}/callgrind.out", sys.executable, __file__, str(m)],
            env={**os.environ, "_INGEST_INSTRUCTIONS_INSIDE": "1", "PYTHONHASHSEED": "0"},
            capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
    resources = json.loads(done.stdout.strip().splitlines()[-1])["resources"]
    collected = int(re.search(r"Collected : ([\d,]+)", done.stderr).group(1).replace(",", ""))
    print(json.dumps({"bundles": m, "resources": resources, "instructions": collected,
                      "m_instructions_per_resource": round(collected / resources / 1e6, 3)}))


if __name__ == "__main__":
    main()
