"""A small load driver for requests whose auth varies per request (wrk sends fixed headers).

Fixed concurrency (`-c` keep-alive connections), bounded by time (`-d`) and count (`-n`), loopback only.
Prints one JSON line: requests/s, p50, p90, p99, max (ms), errors.

    .venv/bin/python bench/drive.py --target ours  --scenario native-get-mixed -c 8 -d 10
    .venv/bin/python bench/drive.py --target parse --scenario native-get-mixed -c 8 -d 10

Scenarios read bench-run/manifest-<target>.json (written by generate.py --probe):
  native-get-mixed   GET /classes/Allergy/<id>, each request as a different user (200 session tokens)
  native-query-mixed GET /classes/LabResult?where={profile: <that user's profile>}&limit=20, per user
  fhir-read-mixed    GET /fhir/Observation/<id>... (ours) per user: GET /fhir/AllergyIntolerance/<id>
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path

RUN = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent
PARSE_KEYS = {"X-Parse-Application-Id": "myAppId", "X-Parse-REST-API-Key": "myRestKey"}


def requests_for(target: str, scenario: str) -> tuple[str, int, list[bytes]]:
    m = json.loads((RUN / f"manifest-{target}.json").read_text())
    base = urllib.parse.urlsplit(m["base"])
    prefix = base.path  # /parse
    extra = PARSE_KEYS if target == "parse" else {}
    out = []
    for u in m["users"]:
        hdrs = {"Host": base.netloc, "X-Parse-Session-Token": u["token"], **extra}
        if scenario == "native-get-mixed":
            path = f"{prefix}/classes/Allergy/{u['allergy']}"
        elif scenario == "native-query-mixed":
            where = json.dumps({"profile": {"__type": "Pointer", "className": "Profile", "objectId": u["profile"]}},
                               separators=(",", ":"))
            path = f"{prefix}/classes/LabResult?limit=20&where={urllib.parse.quote(where)}"
        elif scenario == "fhir-read-mixed":
            path = f"/fhir/AllergyIntolerance/{u['allergy']}"
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        out.append(head.encode())
    return base.hostname, base.port, out


async def worker(host: str, port: int, reqs: list[bytes], offset: int, stride: int, deadline: float,
                 budget: list[int], lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        req = reqs[i % len(reqs)]
        i += stride
        t = time.perf_counter()
        writer.write(req)
        status_line = await reader.readline()
        length, chunked = 0, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if chunked:
            while True:
                size = int((await reader.readline()).strip(), 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        lat.append(time.perf_counter() - t)
        if not status_line.split(b" ")[1].startswith(b"2"):
            errors[0] += 1
    writer.close()


def pct(sorted_lat: list[float], p: float) -> float:
    return round(1000 * sorted_lat[min(len(sorted_lat) - 1, int(len(sorted_lat) * p))], 2)


async def run(args) -> dict:
    host, port, reqs = requests_for(args.target, args.scenario)
    lat: list[float] = []
    errors = [0]
    budget = [args.n]
    t0 = time.perf_counter()
    deadline = t0 + args.d
    await asyncio.gather(*(worker(host, port, reqs, k, args.c, deadline, budget, lat, errors) for k in range(args.c)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"target": args.target, "scenario": args.scenario, "connections": args.c, "requests": len(lat),
            "seconds": round(wall, 2), "rps": round(len(lat) / wall, 1), "p50_ms": pct(lat, 0.50),
            "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99), "max_ms": round(1000 * lat[-1], 2),
            "errors": errors[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=["ours", "parse"], required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("-c", type=int, default=8, help="connections")
    ap.add_argument("-d", type=float, default=10, help="seconds")
    ap.add_argument("-n", type=int, default=200000, help="at most this many requests")
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
