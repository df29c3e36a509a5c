"""Side by side: the same native workload against our gateway and the real Parse Server, in one run, plus
the FHIR scenarios (ours only). wrk (Debian's package) drives fixed-header requests; bench/drive.py the
requests whose session token varies. Both servers must be running (bench/serve.sh start; parse-peer start.sh)
and loaded (bench/generate.py --probe for each).

    .venv/bin/python bench/compare.py                      # native side by side + FHIR, 10 s each, 8 connections
    .venv/bin/python bench/compare.py --only fhir --label 1M
    .venv/bin/python bench/compare.py --rounds 2 -d 10 -c 8 --json bench-run/results-10k.json

For each run it prints requests/s, p50 and p99 (ms) and the CPU milliseconds the server's processes spent
per request (utime+stime from /proc: robust to other load on the machine, which inflates wall-clock numbers).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent
PARSE_PEER = Path(os.environ.get("PARSE_PEER", "/work/parse-peer"))
PARSE_KEYS = {"X-Parse-Application-Id": "myAppId", "X-Parse-REST-API-Key": "myRestKey"}
TICK = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def child_pids(root: int | None) -> list[int]:
    """The direct children of a process (our gunicorn master's workers), in pid order."""
    if not root:
        return []
    return sorted(p for p in tree_pids(root) if p != root and
                  int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) == root)


def cpu_seconds(root: int | None) -> float:
    if not root:
        return 0.0
    total = 0
    for p in tree_pids(root):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, and cutime, cstime: the CPU of its children that have exited (PostgreSQL backends
            # whose connection a pool closed during the run)
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except (OSError, IndexError):
            pass
    return total / TICK


def machine_idle_seconds() -> float:
    """CPU seconds every core of the machine spent idle so far (/proc/stat: idle + iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / TICK


def server_pid(target: str) -> int | None:
    f = RUN / "gateway.pid" if target == "ours" else PARSE_PEER / "server.pid"
    try:
        return int(f.read_text().strip())
    except (OSError, ValueError):
        return None


def postmaster_pid() -> int | None:
    """The local PostgreSQL server's first process (its backends are its children), or None."""
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == "postgres" and \
                    int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == 1:
                return int(d.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


def to_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    v, unit = float(m.group(1)), m.group(2)
    return round(v * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 2)


def wrk(url: str, headers: dict[str, str], *, c: int, d: int, body: str | None = None) -> dict:
    cmd = ["wrk", "-t1", f"-c{c}", f"-d{d}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    script = None
    if body is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n')
        cmd += ["-s", script.name]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=d + 60, check=False).stdout
    if script:
        os.unlink(script.name)
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for p, key in (("50%", "p50_ms"), ("90%", "p90_ms"), ("99%", "p99_ms")):
        res[key] = to_ms(re.search(rf"^\s+{re.escape(p)}\s+(\S+)", out, re.MULTILINE).group(1))
    res["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] = int(m.group(1)) if m else 0
    return res


def drive(target: str, scenario: str, *, c: int, d: int) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "drive.py"), "--target", target, "--scenario", scenario,
                          "-c", str(c), "-d", str(d)], capture_output=True, text=True, timeout=d + 120, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def manifest(target: str) -> dict:
    return json.loads((RUN / f"manifest-{target}.json").read_text())


def native_scenarios(target: str) -> dict[str, tuple]:
    m = manifest(target)
    p = m["probe"]
    h = {"X-Parse-Session-Token": p["token"], **(PARSE_KEYS if target == "parse" else {})}
    base = m["base"]
    where = json.dumps({"profile": {"__type": "Pointer", "className": "Profile", "objectId": p["profile"]}},
                       separators=(",", ":"))
    create = {"profile": {"__type": "Pointer", "className": "Profile", "objectId": p["profile"]},
              "substance": "Peanut", "severity": "mild", "reaction": "Hives", "isActive": True}
    if target == "parse":
        create["ACL"] = {p["userId"]: {"read": True, "write": True}}
    return {
        "native-get": ("wrk", f"{base}/classes/Allergy/{p['allergy']}", h, None),
        "native-query": ("wrk", f"{base}/classes/LabResult?limit=20&where={urllib.parse.quote(where)}", h, None),
        "native-create": ("wrk", f"{base}/classes/Allergy", {**h, "Content-Type": "application/json"},
                          json.dumps(create)),
        "native-get-mixed": ("drive", "native-get-mixed", None, None),
        "native-query-mixed": ("drive", "native-query-mixed", None, None),
    }


def fhir_scenarios() -> dict[str, tuple]:
    m = manifest("ours")
    h = {"X-Parse-Session-Token": m["probe"]["token"], "Accept": "application/fhir+json"}
    base = m["base"].rsplit("/parse", 1)[0] + "/fhir"
    big = {"X-Parse-Session-Token": m["big"]["token"], "Accept": "application/fhir+json"}
    return {
        "fhir-read": ("wrk", f"{base}/Observation/{m['fhir']['observation']}", h, None),
        "fhir-search": ("wrk", f"{base}/Observation?patient={m['fhir']['patient']}&_count=20", h, None),
        "fhir-everything": ("wrk", f"{base}/Patient/{m['big']['profile']}/$everything", big, None),
        "fhir-read-mixed": ("drive", "fhir-read-mixed", None, None),
    }


def measure(target: str, spec: tuple, *, c: int, d: int, name: str) -> dict:
    kind, url, headers, body = spec
    pid = server_pid(target)
    cpu0, t0 = cpu_seconds(pid), time.time()
    res = wrk(url, headers, c=c, d=d, body=body) if kind == "wrk" else drive(target, url, c=c, d=d)
    cpu = cpu_seconds(pid) - cpu0
    res.update(target=target, scenario=name, driver=kind, connections=c, seconds=d,
               server_cpu_ms_per_req=round(1000 * cpu / max(1, res["requests"]), 2),
               loadavg=round(os.getloadavg()[0], 2), at=time.strftime("%H:%M:%S", time.localtime(t0)))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("-d", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="alternate ours/parse this many times per scenario")
    ap.add_argument("--warmup", type=int, default=2,
                    help="seconds of each scenario per server before it is measured, not counted (a server just "
                         "started opens its database connections and prepares its statements in the first requests)")
    ap.add_argument("--only", choices=["native", "fhir", "all"], default="all")
    ap.add_argument("--scenarios", help="comma-separated subset")
    ap.add_argument("--label", default="", help="data size label for the report, e.g. 10k")
    ap.add_argument("--json", help="append results (JSON lines) to this file")
    args = ap.parse_args()
    rows = []
    wanted = set(args.scenarios.split(",")) if args.scenarios else None
    if args.only in ("native", "all"):
        ours, parse = native_scenarios("ours"), native_scenarios("parse")
        for name in ours:
            if wanted and name not in wanted:
                continue
            for target in ("ours", "parse") if args.warmup else ():
                measure(target, (ours if target == "ours" else parse)[name], c=args.c, d=args.warmup, name=name)
            for r in range(args.rounds):
                order = ("ours", "parse") if r % 2 == 0 else ("parse", "ours")
                for target in order:
                    spec = (ours if target == "ours" else parse)[name]
                    rows.append(measure(target, spec, c=args.c, d=args.d, name=name))
                    print(fmt(rows[-1]), flush=True)
    if args.only in ("fhir", "all"):
        for name, spec in fhir_scenarios().items():
            if wanted and name not in wanted:
                continue
            if args.warmup:
                measure("ours", spec, c=args.c, d=args.warmup, name=name)
            for _ in range(args.rounds):
                rows.append(measure("ours", spec, c=args.c, d=args.d, name=name))
                print(fmt(rows[-1]), flush=True)
    for row in rows:
        row["label"] = args.label
    print()
    print(summary(rows))
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


def fmt(r: dict) -> str:
    return (f"{r['scenario']:<20} {r['target']:<6} {r['rps']:>9.1f} req/s  p50 {r['p50_ms']:>8.2f} ms  "
            f"p99 {r['p99_ms']:>8.2f} ms  cpu {r['server_cpu_ms_per_req']:>6.2f} ms/req  err {r['errors']}  "
            f"load {r['loadavg']}")


def summary(rows: list[dict]) -> str:
    lines = [("| scenario | ours req/s | Parse req/s | ratio | ours p50 / p99 ms | Parse p50 / p99 ms | "
              "ours / Parse CPU ms/req |"), "|---|---|---|---|---|---|---|"]
    by: dict[tuple, list] = {}
    for r in rows:
        by.setdefault((r["scenario"], r["target"]), []).append(r)
    for name in dict.fromkeys(r["scenario"] for r in rows):
        o, p = by.get((name, "ours"), []), by.get((name, "parse"), [])
        if not o:
            continue
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        if p:
            lines.append(f"| {name} | {med(o, 'rps'):.0f} | {med(p, 'rps'):.0f} | {med(o, 'rps') / med(p, 'rps'):.2f} | "
                         f"{med(o, 'p50_ms'):.1f} / {med(o, 'p99_ms'):.1f} | {med(p, 'p50_ms'):.1f} / {med(p, 'p99_ms'):.1f} | "
                         f"{med(o, 'server_cpu_ms_per_req'):.2f} / {med(p, 'server_cpu_ms_per_req'):.2f} |")
        else:
            lines.append(f"| {name} | {med(o, 'rps'):.0f} | - | - | {med(o, 'p50_ms'):.1f} / {med(o, 'p99_ms'):.1f} "
                         f"| - | {med(o, 'server_cpu_ms_per_req'):.2f} / - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
