"""CPU per request of the hot reads (native GET by id, FHIR read) with and without the request layer
(gateway/ops/wsgi.py: request id, access log line, metrics), in process, on a fresh SQLite instance.

    .venv/bin/python bench/ops_overhead.py [N] [--multiprocess] [--instructions]

Each variant calls the WSGI app with a raw environ N times, interleaved over 5 rounds; the median round is
printed. The access log goes to /dev/null (fd 1 is redirected while measuring). --multiprocess measures
metrics in prometheus_client's file-backed mode, as under `serve`. CPU time on a shared machine drifts by
more than the layer costs; --instructions counts instead, each variant in its own run under callgrind
(as bench/ingest_instructions.py: the same count on every run), N requests inside functools.reduce.
"""
from __future__ import annotations

import functools
import io
import json
import os
import re
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3000
if "--multiprocess" in sys.argv:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="phr-bench-metrics-")

from gateway import create_app  # noqa: E402
from gateway.live.server import ready_to_serve  # noqa: E402
from gateway.migrate import upgrade  # noqa: E402
from gateway.ops import metrics as ops_metrics  # noqa: E402
from gateway.ops.wsgi import Observed, _stdout  # noqa: E402


def environ(path: str, headers: dict[str, str]) -> dict:
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
           "wsgi.input": io.BytesIO(), "REMOTE_ADDR": "127.0.0.1"}
    env.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return env


def call(app, env: dict) -> int:
    status = []
    body = app(dict(env), lambda s, h, e=None: status.append(s))
    for _ in body:
        pass
    getattr(body, "close", lambda: None)()
    return int(status[0][:3])


def setup():
    instance = tempfile.mkdtemp(prefix="phr-bench-")
    # The caller cache must not expire while counting: under callgrind a run takes minutes of wall time, and
    # each expiry (5 s by default) is a token lookup counted in whichever variant it fell.
    app = create_app({"INSTANCE_PATH": instance, "APP_ID": "bench", "BASE_URL": "http://localhost",
                      "CALLER_CACHE_SECONDS": 3600})
    upgrade(app.extensions["phr_db"][0])
    c = app.test_client()
    h = {"X-Parse-Application-Id": "bench"}
    token = c.post("/parse/users", json={"username": "bench", "password": "pw-bench-1"},
                   headers=h).json["sessionToken"]
    h["X-Parse-Session-Token"] = token
    pid = c.post("/parse/classes/Profile", json={"fullName": "Bench Patient"}, headers=h).json["objectId"]
    rid = c.post("/parse/classes/Allergy", headers=h, json={
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": pid}, "substance": "Peanut",
        "severity": "mild", "reaction": "Hives"}).json["objectId"]
    if not os.environ.get("_OPS_OVERHEAD_INSIDE"):  # FHIR write validation models: minutes in callgrind
        ready_to_serve()
    else:
        import gc

        gc.collect()
        gc.freeze()
    inner = app.wsgi_app.downstream  # NativeReads -> FhirReads -> Flask
    variants = {
        "no layer": inner,
        "layer, log off, metrics off": Observed(inner, write=None),
        "layer, log on": Observed(inner, write=_stdout),
        "layer, log on, metrics on": Observed(inner, write=_stdout, metrics=ops_metrics.metrics(),
                                              on_first_request=lambda: ops_metrics.watch_pool(
                                                  app.extensions["phr_db"][0])),
    }
    cases = {"native GET": environ(f"/parse/classes/Allergy/{rid}", h),
             "FHIR read": environ(f"/fhir/AllergyIntolerance/{rid}", {"X-Parse-Session-Token": token})}
    return variants, cases


def cpu() -> None:
    variants, cases = setup()
    variants["no layer (again: the noise)"] = variants["no layer"]
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        os.dup2(null, 1)
        for _round in range(5):
            for case, env in cases.items():
                for name, wsgi in variants.items():
                    assert call(wsgi, env) == 200
                    t = time.process_time()
                    for _ in range(N):
                        call(wsgi, env)
                    results.setdefault((case, name), []).append(1e6 * (time.process_time() - t) / N)
    finally:
        os.dup2(saved, 1)
    mode = "multiprocess (files)" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "single process"
    print(f"CPU us per request, median of 5 rounds of {N}; metrics {mode}")
    for case in cases:
        base = statistics.median(results[(case, "no layer")])
        for name in variants:
            us = statistics.median(results[(case, name)])
            print(f"  {case:<11} {name:<32} {us:8.1f} us  ({us - base:+6.1f})")


def counted(case: str, name: str) -> None:
    """Inside callgrind: warm up, then N requests of one case and variant inside functools.reduce."""
    variants, cases = setup()
    wsgi, env = variants[name], cases[case]
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    for _ in range(50):
        assert call(wsgi, env) == 200
    functools.reduce(lambda _a, _b: call(wsgi, env), range(N), None)


def instructions() -> None:
    names = ["no layer", "layer, log off, metrics off", "layer, log on", "layer, log on, metrics on"]
    mode = "multiprocess (files)" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "single process"
    print(f"instructions per request (callgrind, {N} requests); metrics {mode}")
    for case in ("native GET", "FHIR read"):
        base = None
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                done = subprocess.run(
                    ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                     "--toggle-collect=functools_reduce", f"--callgrind-out-file={tmp}/callgrind.out",
                     sys.executable, __file__, str(N)],
                    env={**os.environ, "_OPS_OVERHEAD_INSIDE": json.dumps([case, name]),
                         "PYTHONHASHSEED": "0"},
                    capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
            per = int(re.search(r"Collected : ([\d,]+)", done.stderr).group(1).replace(",", "")) / N
            base = base or per
            print(f"  {case:<11} {name:<32} {per / 1000:9.1f} k  ({100 * (per - base) / base:+5.2f} %)")


def main() -> None:
    inside = os.environ.get("_OPS_OVERHEAD_INSIDE")
    if inside:
        counted(*json.loads(inside))
    elif "--instructions" in sys.argv:
        instructions()
    else:
        cpu()

if __name__ == "__main__":
    main()
