"""Profile one scenario in process (pyinstrument): the Flask app, our database, no HTTP server.

    .venv/bin/python bench/profile_inproc.py ingest|read|search|everything|native-get|native-query|native-create [N]
Writes an HTML and a text profile to bench-run/prof/.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyinstrument import Profiler

from gateway import create_app
from gateway.live.server import ready_to_serve

RUN = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent


def main() -> None:
    what = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    app = create_app()
    ready_to_serve()  # as a served worker before its first request
    c = app.test_client()
    m = json.loads((RUN / "manifest-ours.json").read_text()) if (RUN / "manifest-ours.json").exists() else {}
    h = {"X-Parse-Session-Token": m.get("probe", {}).get("token", "")}
    if what == "ingest":
        import generate
        tok = c.post("/parse/users", json={"username": f"prof{random.randrange(10**9)}", "password": "x1"}).json["sessionToken"]
        h = {"X-Parse-Session-Token": tok, "Prefer": "return=minimal"}
        bundles = [generate.fhir_bundle(random.Random(i), f"Prof{i} Patient", generate.counts(random.Random(i))) for i in range(n)]
        calls = [lambda b=b: c.post("/fhir", data=json.dumps(b), headers=h, content_type="application/fhir+json") for b in bundles]
    else:
        p = m["probe"]
        paths = {
            "native-get": ("GET", f"/parse/classes/Allergy/{p['allergy']}", None),
            "native-query": ("GET", "/parse/classes/LabResult?limit=20&where=" + json.dumps(
                {"profile": {"__type": "Pointer", "className": "Profile", "objectId": p["profile"]}}), None),
            "native-create": ("POST", "/parse/classes/Allergy", {"profile": {"__type": "Pointer", "className": "Profile", "objectId": p["profile"]},
                                                                  "substance": "Peanut", "severity": "mild", "reaction": "Hives"}),
            "read": ("GET", f"/fhir/Observation/{m['fhir']['observation']}", None),
            "search": ("GET", f"/fhir/Observation?patient={m['fhir']['patient']}&_count=20", None),
            "everything": ("GET", f"/fhir/Patient/{m['big']['profile']}/$everything", None),
        }
        method, path, body = paths[what]
        if what == "everything":
            h = {"X-Parse-Session-Token": m["big"]["token"]}
        calls = [lambda: c.open(path, method=method, json=body, headers=h)] * n
    r = calls[0]()
    assert r.status_code < 300, (r.status_code, r.data[:500])
    prof = Profiler(interval=0.0005)
    t = time.perf_counter()
    prof.start()
    for call in calls[1:]:
        r = call()
        assert r.status_code < 300, (r.status_code, r.data[:300])
    prof.stop()
    dt = time.perf_counter() - t
    print(f"{what}: {len(calls) - 1} calls in {dt:.2f}s = {1000 * dt / max(1, len(calls) - 1):.2f} ms/call")
    out = RUN / "prof" / f"{what}"
    out.with_suffix(".html").write_text(prof.output_html())
    out.with_suffix(".txt").write_text(prof.output_text(unicode=False, show_all=False))
    print(prof.output_text(unicode=False, show_all=False)[:12000])


if __name__ == "__main__":
    main()
