"""Instructions one request of each hot path costs the gateway, counted by callgrind: repeatable on a shared
or drifting machine, where CPU time cannot tell a change of a few percent (see ingest_instructions.py).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/phr_instr .venv/bin/python bench/request_instructions.py [N]

Scenarios (N counted requests each, default 50, after 5 warm-ups): native-get (an Allergy by id), native-query
(20 LabResults of a profile), fhir-read (an Observation), fhir-search (Observation?patient=&_count=20),
everything (Patient/$everything of a ~400-resource patient), ingest (one transaction Bundle per request,
N/10 of them). Requests go through the whole WSGI stack (`app.wsgi_app`, the Flask-free fronts included)
from prebuilt environs, so nothing of a test client is counted.

The data is made first by a plain run (a new user and patient each time, in the given database, which must
exist and may hold anything); then the script re-runs itself under `valgrind --tool=callgrind`, where each
scenario's requests run inside one functools.reduce call: callgrind counts only within it and dumps after
each, so every scenario has its own total. Our process only: PostgreSQL's work is not counted. Prints one
JSON line per scenario with instructions per request.
"""
from __future__ import annotations

import functools
import glob
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = ("native-get", "native-query", "fhir-read", "fhir-search", "everything", "ingest")


def _app():
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from gateway import create_app
    from gateway.live.server import ready_to_serve

    app = create_app()
    ready_to_serve()
    return app


def prepare(out: Path) -> None:
    """Make a user with one small and one big patient; write what the counted run needs."""
    import generate

    app = _app()
    c = app.test_client()
    token = c.post("/parse/users", json={"username": f"instr{random.randrange(10**9)}", "password": "x1"}
                   ).json["sessionToken"]
    h = {"X-Parse-Session-Token": token}
    for i, scale in ((0, 1.0), (1, 8.0)):
        bundle = generate.fhir_bundle(random.Random(i), f"Instr{i} Patient", generate.counts(random.Random(i), scale))
        r = c.post("/fhir", json=bundle, headers=h, content_type="application/fhir+json")
        assert r.status_code == 200, (r.status_code, r.data[:300])
    profiles = c.get("/parse/classes/Profile?order=createdAt", headers=h).json["results"]
    small, big = profiles[0]["objectId"], profiles[1]["objectId"]
    where = json.dumps({"profile": {"__type": "Pointer", "className": "Profile", "objectId": small}})
    allergy = c.get(f"/parse/classes/Allergy?limit=1&where={where}", headers=h).json["results"][0]["objectId"]
    obs = c.get(f"/fhir/Observation?patient={small}&_count=1", headers=h).json["entry"][0]["resource"]["id"]
    out.write_text(json.dumps({"token": token, "small": small, "big": big, "allergy": allergy, "observation": obs}))


def measure(manifest: Path, n: int) -> None:
    import generate
    from werkzeug.test import EnvironBuilder

    m = json.loads(manifest.read_text())
    app = _app()
    h = {"X-Parse-Session-Token": m["token"]}
    where = json.dumps({"profile": {"__type": "Pointer", "className": "Profile", "objectId": m["small"]}})
    gets = {
        "native-get": f"/parse/classes/Allergy/{m['allergy']}",
        "native-query": f"/parse/classes/LabResult?limit=20&where={where}",
        "fhir-read": f"/fhir/Observation/{m['observation']}",
        "fhir-search": f"/fhir/Observation?patient={m['small']}&_count=20",
        "everything": f"/fhir/Patient/{m['big']}/$everything",
    }

    def environ(method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> dict:
        b = EnvironBuilder(path=path, method=method, data=body, headers={**h, **(headers or {})},
                           content_type="application/fhir+json" if body else None)
        try:
            return b.get_environ()
        finally:
            b.close()

    def call(env: dict) -> None:
        env = dict(env)
        if "_body" in env:
            env["wsgi.input"] = io.BytesIO(env["_body"])
        status = []
        body = b"".join(app.wsgi_app(env, lambda s, hs, exc=None: status.append(s)))
        assert status[0].startswith(("200", "201")), (status, body[:300])

    for name in SCENARIOS:
        if name == "ingest":
            k = max(2, n // 10)
            envs = []
            for i in range(k + 2):
                data = json.dumps(generate.fhir_bundle(random.Random(100 + i), f"Ingest{i} Patient",
                                                       generate.counts(random.Random(100 + i)))).encode()
                env = environ("POST", "/fhir", data, {"Prefer": "return=minimal"})
                env["_body"] = data
                envs.append(env)
            warm, counted = envs[:2], envs[2:]
            per = sum(len(json.loads(e["_body"])["entry"]) for e in counted)
        else:
            env = environ("GET", gets[name])
            warm, counted, per = [env] * 5, [env] * n, n
        for env in warm:
            call(env)
        functools.reduce(lambda _, env: call(env), counted, None)  # counted, then dumped
        print(json.dumps({"scenario": name, "units": per}), flush=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    if os.environ.get("_REQUEST_INSTRUCTIONS_INSIDE"):
        measure(Path(os.environ["_REQUEST_INSTRUCTIONS_INSIDE"]), n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        prepare(manifest)
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
             "--dump-after=functools_reduce", f"--callgrind-out-file={tmp}/callgrind.out", sys.executable,
             __file__, str(n)],
            # The caller cache kept for the whole run: at valgrind's speed a 5 s cache would expire between
            # requests as the machine's load decides, and the token lookups with it.
            env={**os.environ, "_REQUEST_INSTRUCTIONS_INSIDE": str(manifest), "PYTHONHASHSEED": "0",
                 "PHR_CALLER_CACHE_SECONDS": "86400"},
            capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
        units = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"scenario"')]
        dumps = sorted((p for p in glob.glob(f"{tmp}/callgrind.out.*") if re.search(r"\.\d+$", p)),
                       key=lambda p: int(p.rsplit(".", 1)[1]))
        totals = []
        for path in dumps:
            text = Path(path).read_text(errors="replace")
            found = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            totals.append(int(found.group(1)) if found else 0)
        totals = [t for t in totals if t]
    for u, total in zip(units, totals):
        print(json.dumps({"scenario": u["scenario"], "requests_or_resources": u["units"],
                          "m_instructions_per_unit": round(total / u["units"] / 1e6, 3)}))


if __name__ == "__main__":
    main()
