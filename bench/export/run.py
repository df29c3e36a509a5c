"""Bulk export benchmark (run by hand, never by the test suite): resources/s and peak memory of ONE export
worker for 10k, 100k and 1M resources, on SQLite and on PostgreSQL.

    .venv/bin/python bench/export/run.py                          # every size, both databases, both modes
    .venv/bin/python bench/export/run.py --sizes 10000 --databases sqlite --modes inprocess

Data goes straight into fhir_resource (the fast path): bodies are made by the real mappings from the
golden native records in tests/data/mappings (Observation, AllergyIntolerance, Immunization,
MedicationStatement, RelatedPerson, one Patient per 50 resources), then copied with fresh ids. PostgreSQL
runs in a schema of its own (bench_export) at PHR_BENCH_POSTGRES_URL (default 127.0.0.1:5432/test) and is
dropped at the end; SQLite in a temporary file.

Modes: `inprocess` runs bulk.run_job in a fresh Python process of its own (so its peak memory is the
export's); `process` starts `phr-gateway worker` and times the job it claims. The export is a system-level
export by the master key (the principal with no access predicate) of every type.

Each result is one JSON line on stdout; --markdown prints the table for docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("PHR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_export"
BASE = "http://bench.local/fhir"
#: native class, golden folder, FHIR type, sharing category
KINDS = [("LabResult", "observation", "Observation", "labs"),
         ("Allergy", "allergy-intolerance", "AllergyIntolerance", "allergies"),
         ("Vaccination", "immunization", "Immunization", "immunizations"),
         ("Medication", "medication-statement", "MedicationStatement", "medications"),
         ("EmergencyContact", "related-person", "RelatedPerson", "contacts")]
PER_PATIENT = 50
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def vmhwm_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def object_id(i: int) -> str:
    out = []
    for _ in range(10):
        i, r = divmod(i, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def templates() -> dict[str, list[str]]:
    """FHIR type -> JSON bodies made by the mappings, with @@ID@@ / @@PID@@ where the ids go."""
    import mappings

    out: dict[str, list[str]] = {}
    for class_name, folder, rt, _ in KINDS + [("Profile", "patient", "Patient", None)]:
        for path in sorted(glob.glob(str(ROOT / "tests" / "data" / "mappings" / folder / "*.native.json"))):
            record = json.loads(Path(path).read_text())
            record["objectId"] = "@@ID@@"
            if class_name != "Profile":
                record["profile"] = {"__type": "Pointer", "className": "Profile", "objectId": "@@PID@@"}
            try:
                resource = mappings.to_fhir(class_name, record)
            except Exception:  # noqa: BLE001, S112 - a golden case needing extra context: skip it
                continue
            if resource.get("resourceType") != rt:
                continue
            resource["meta"] = {"versionId": "1", "lastUpdated": "@@TS@@"}
            out.setdefault(rt, []).append(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
    return out


def database(kind: str, workdir: Path) -> str:
    from sqlalchemy import text

    from gateway.db import make_engine
    from gateway.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        admin.dispose()
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{SCHEMA}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def drop_pg() -> None:
    from sqlalchemy import text

    from gateway.db import make_engine

    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def generate(url: str, n: int, start: int = 0) -> float:
    """Insert resources start..n-1 into fhir_resource; returns the seconds it took."""
    from sqlalchemy import insert

    from gateway.db import make_engine
    from gateway.models import FhirResource

    tpl = templates()
    kinds = [(rt, cls, cat) for cls, _, rt, cat in KINDS if rt in tpl]
    engine = make_engine(url)
    table = FhirResource.__table__
    when = datetime(2025, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    batch: list[dict] = []
    with engine.begin() as conn:
        for i in range(start, n):
            oid = object_id(i * 7919 % (62 ** 9) + 62 ** 9)  # spread ids, 10 characters
            pid = object_id((i // PER_PATIENT) * 7919 % (62 ** 9) + 62 ** 9 + 1)
            ts = when + timedelta(seconds=i)
            stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            if i % PER_PATIENT == 0:
                body = tpl["Patient"][i // PER_PATIENT % len(tpl["Patient"])]
                rt, cls, cat, oid = "Patient", "Profile", None, pid
            else:
                rt, cls, cat = kinds[i % len(kinds)]
                options = tpl[rt]
                body = options[(i // len(kinds)) % len(options)]
            body = body.replace("@@ID@@", oid).replace("@@PID@@", pid).replace("@@TS@@", stamp)
            batch.append({"resource_type": rt, "id": oid, "class_name": cls, "source_id": oid, "profile_id": pid,
                          "category": cat, "version_id": 1, "last_updated": ts, "deleted": False, "body": body})
            if len(batch) >= 10_000:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
    engine.dispose()
    return time.perf_counter() - t0


def kick_off(url: str) -> str:
    from gateway.access import MASTER
    from gateway.db import make_engine, make_sessionmaker
    from gateway.services import bulk

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        job = bulk.kick_off(s, MASTER, "system", {}, f"{BASE}/$export")
        s.commit()
        job_id = job.id
    engine.dispose()
    return job_id


def job_result(url: str, job_id: str) -> dict:
    from sqlalchemy import func, select

    from gateway.db import make_engine, make_sessionmaker
    from gateway.models import ExportFile, ExportJob

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        job = s.get(ExportJob, job_id)
        count = s.scalar(select(func.sum(ExportFile.count)).where(ExportFile.job_id == job_id,
                                                                  ExportFile.kind == "output"))
        files = s.scalar(select(func.count()).select_from(ExportFile).where(ExportFile.job_id == job_id))
        out = {"status": job.status, "resources": int(count or 0), "files": files,
               "job_seconds": (job.finished_at - job.transaction_time).total_seconds() if job.finished_at else None}
    engine.dispose()
    return out


def run_inprocess(url: str) -> dict:
    """Child process: claim and run the job; report time and peak memory of this process."""
    from gateway.db import make_engine, make_sessionmaker
    from gateway.services import bulk

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    job_id = bulk.claim_next(factory, "bench")
    base_kb = vmhwm_kb()
    t0 = time.perf_counter()
    bulk.run_job(factory, job_id, "bench", BASE)
    seconds = time.perf_counter() - t0
    engine.dispose()
    return {"job": job_id, "seconds": seconds, "vmhwm_kb": vmhwm_kb(), "vmhwm_before_kb": base_kb}


def measure(url: str, kind: str, n: int, mode: str) -> dict:
    job_id = kick_off(url)
    env = {k: v for k, v in os.environ.items() if not (k.startswith("PHR_") or k == "DATABASE_URL")}
    env.update(DATABASE_URL=url, PHR_BASE_URL=BASE.removesuffix("/fhir"),
               PHR_INSTANCE_PATH=tempfile.mkdtemp(prefix="bench-instance-"))
    if mode == "inprocess":
        r = subprocess.run([sys.executable, __file__, "--child", url], env=env, capture_output=True, text=True,
                           check=True, timeout=3600)
        child = json.loads(r.stdout.strip().splitlines()[-1])
        result = job_result(url, job_id)
        seconds, peak = child["seconds"], child["vmhwm_kb"]
        extra = {"vmhwm_before_run_kb": child["vmhwm_before_kb"]}
    else:
        exe = str(Path(sys.executable).parent / "phr-gateway")
        proc = subprocess.Popen([exe, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 3600
            peak = 0
            while time.monotonic() < deadline:
                time.sleep(0.2)
                peak = max(peak, vmhwm_kb(proc.pid))
                result = job_result(url, job_id)
                if result["status"] == "completed":
                    break
            peak = max(peak, vmhwm_kb(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        seconds = result["job_seconds"]
        extra = {}
    return {"database": kind, "mode": mode, "size": n, "exported": result["resources"], "files": result["files"],
            "seconds": round(seconds, 3), "resources_per_s": round(result["resources"] / seconds),
            "peak_rss_mb": round(peak / 1024, 1), **{k: round(v / 1024, 1) for k, v in extra.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--modes", default="inprocess,process")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_inprocess(args.child)))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows = []
    print(json.dumps({"machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                      "cpus": os.cpu_count(), "python": platform.python_version()}), flush=True)
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            url = database(kind, Path(tmp))
            have = 0
            try:
                for n in sizes:  # grow the same database: 10k, then +90k, then +900k
                    gen = generate(url, n, have)
                    have = n
                    for mode in args.modes.split(","):
                        row = measure(url, kind, n, mode)
                        row["generate_s"] = round(gen, 1)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
            finally:
                if kind == "postgresql":
                    drop_pg()
    if args.markdown:
        print("\n| database | worker | resources | seconds | resources/s | peak RSS (MB) |")
        print("|---|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['database']} | {r['mode']} | {r['exported']:,} | {r['seconds']} | {r['resources_per_s']:,} "
                  f"| {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
