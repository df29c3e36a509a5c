"""Benchmark data: patients with realistic record counts, loaded into PostgreSQL three ways.

  --via native   our Parse-compatible API: signup, then /parse/batch (100 creates per batch), files for documents
  --via fhir     our FHIR API: one transaction Bundle per patient (POST /fhir), timed -> ingest resources/s
  --via service  in process, the same services the HTTP faces call (ObjectService.create: native row, ACL,
                 version, FHIR JSON, search index), one transaction per patient; for the 1M step
  --via parse    the real Parse Server (the same native records through its /batch), for the side-by-side runs

Every patient gets a record like a PHR user's (mean counts below, +-30 % per patient): 3 allergies,
12 vaccinations, 8 medications, 70 lab results, 5 documents and 2 emergency contacts (100 records with the
Profile). `--records N` loads about N records. Users own 2 profiles each (a caregiver and a family member).
The first run (`--probe`) also makes the probe data the load drivers use: a patient with 500 FHIR resources
for $everything, and writes bench-run/manifest-<target>.json (tokens, ids).

    .venv/bin/python bench/generate.py --via native --records 10000 --probe
    .venv/bin/python bench/generate.py --via fhir   --records 10000
    .venv/bin/python bench/generate.py --via parse  --records 10000 --probe
    .venv/bin/python bench/generate.py --via service --records 900000
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fhir import synthea

RUN_DIR = Path(os.environ.get("PHR_INSTANCE_PATH", "/work/bench-run/instance")).parent
OURS = os.environ.get("PHR_BASE_URL", "http://127.0.0.1:8090")
PARSE = os.environ.get("PARSE_URL", "http://127.0.0.1:1337/parse")
PASSWORD = "bench-password-1"
MEAN = {"Allergy": 3, "Vaccination": 12, "Medication": 8, "LabResult": 70, "MedicalDocument": 5,
        "EmergencyContact": 2}
PER_PATIENT = 1 + sum(MEAN.values())  # 100
SUBSTANCES = ["Peanut", "Penicillin", "Latex", "Shellfish", "Pollen", "Cat dander", "Egg", "Sulfa"]
VACCINES = ["Influenza", "Tdap", "MMR", "Hepatitis B", "COVID-19 mRNA", "Varicella", "HPV", "Pneumococcal"]
MEDS = [("Metformin", "500 mg", "twice daily"), ("Lisinopril", "10 mg", "once daily"),
        ("Atorvastatin", "20 mg", "at night"), ("Levothyroxine", "50 mcg", "mornings"),
        ("Amlodipine", "5 mg", "once daily"), ("Omeprazole", "20 mg", "before breakfast")]
LABS = [("Glucose", "mg/dL", 70, 140), ("Hemoglobin A1c", "%", 4.5, 7.5), ("Total cholesterol", "mg/dL", 150, 260),
        ("Creatinine", "mg/dL", 0.6, 1.4), ("Hemoglobin", "g/dL", 12, 17), ("TSH", "mIU/L", 0.4, 4.5)]
DOC_TYPES = ["Lab report", "Discharge summary", "Imaging report", "Referral letter", "Insurance card"]


def d(day: date) -> dict[str, str]:
    return {"__type": "Date", "iso": f"{day.isoformat()}T00:00:00.000Z"}


def ptr(cls: str, oid: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": oid}


def counts(rnd: random.Random, scale: float = 1.0) -> dict[str, int]:
    return {k: max(0, round(v * scale * rnd.uniform(0.7, 1.3))) for k, v in MEAN.items()}


def native_records(rnd: random.Random, profile_id: str, n: dict[str, int], file_names: list[str]) -> list[tuple[str, dict]]:
    """(class, body) for one patient's records, in the native (Parse) form."""
    out: list[tuple[str, dict]] = []
    p = ptr("Profile", profile_id)
    start = date(2015, 1, 1)
    for i in range(n["Allergy"]):
        out.append(("Allergy", {"profile": p, "substance": SUBSTANCES[(i + rnd.randrange(8)) % 8],
                                "severity": rnd.choice(["mild", "moderate", "severe"]), "reaction": "Hives",
                                "recordedAt": d(start + timedelta(days=rnd.randrange(3000))), "isActive": True}))
    for i in range(n["Vaccination"]):
        out.append(("Vaccination", {"profile": p, "vaccineName": VACCINES[i % len(VACCINES)],
                                    "dateAdministered": d(start + timedelta(days=120 * i + rnd.randrange(30))),
                                    "dose": f"{1 + i % 3}", "lotNumber": f"LOT{rnd.randrange(10**6):06d}"}))
    for i in range(n["Medication"]):
        name, dose, freq = MEDS[i % len(MEDS)]
        out.append(("Medication", {"profile": p, "name": name, "dose": dose, "frequency": freq,
                                   "active": i % 3 != 0, "startDate": d(start + timedelta(days=200 * i))}))
    for i in range(n["LabResult"]):
        name, unit, low, high = LABS[i % len(LABS)]
        out.append(("LabResult", {"profile": p, "testName": name, "value": round(rnd.uniform(low, high), 1),
                                  "units": unit, "referenceRange": f"{low}-{high}",
                                  "date": d(start + timedelta(days=14 * i + rnd.randrange(7)))}))
    for i in range(min(n["MedicalDocument"], len(file_names))):
        out.append(("MedicalDocument", {"profile": p, "file": {"__type": "File", "name": file_names[i]},
                                        "documentType": DOC_TYPES[i % len(DOC_TYPES)], "title": f"Document {i + 1}",
                                        "uploadedAt": d(start + timedelta(days=300 * i)), "isShared": False}))
    for i in range(n["EmergencyContact"]):
        out.append(("EmergencyContact", {"profile": p, "name": f"Contact {i + 1}",
                                         "relationship": rnd.choice(["spouse", "parent", "child", "sibling"]),
                                         "phone": f"+1 555 {rnd.randrange(10**4):04d}"}))
    return out


def fhir_bundle(rnd: random.Random, name: str, n: dict[str, int]) -> dict[str, Any]:
    """One patient's record as a Synthea-style transaction Bundle (urn:uuid references)."""
    pid = synthea.urn()
    given, family = name.split(" ", 1)
    entries = [(pid, synthea.patient(family, given, gender=rnd.choice(["female", "male"])))]
    start = date(2015, 1, 1)
    for i in range(n["LabResult"]):
        entries.append((synthea.urn(), synthea.lab(pid, i, start + timedelta(days=14 * i + rnd.randrange(7)))))
    for i in range(n["Vaccination"]):
        entries.append((synthea.urn(), synthea.immunization(pid, i, start + timedelta(days=120 * i))))
    for i in range(n["Allergy"]):
        entries.append((synthea.urn(), synthea.allergy(pid, i)))
    for i in range(n["Medication"]):
        entries.append((synthea.urn(), synthea.medication(pid, i, start + timedelta(days=200 * i))))
    for i in range(n["EmergencyContact"]):
        entries.append((synthea.urn(), {
            "resourceType": "RelatedPerson", "patient": {"reference": pid},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                          "code": "SPS", "display": "spouse"}]}],
            "name": [{"text": f"Contact {i + 1}"}], "telecom": [{"system": "phone", "value": "+1 555 0100"}]}))
    # Documents come in through the native API (a file upload each); FHIR ingest carries the other types.
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for full, r in entries]}


class Api:
    """A Parse-style REST client for ours or for Parse Server."""

    def __init__(self, base: str, *, parse: bool):
        self.base = base
        self.http = requests.Session()
        self.headers = {"Content-Type": "application/json"}
        if parse:
            self.headers.update({"X-Parse-Application-Id": "myAppId", "X-Parse-REST-API-Key": "myRestKey"})

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, master: str | None = None,
             raw: bytes | None = None, content_type: str | None = None) -> Any:
        h = dict(self.headers)
        if token:
            h["X-Parse-Session-Token"] = token
        if master:
            h["X-Parse-Master-Key"] = master
        if content_type:
            h["Content-Type"] = content_type
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        r = self.http.request(method, self.base + path, data=data, headers=h, timeout=300)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def signup(self, username: str) -> tuple[str, str]:
        out = self.call("POST", "/users", {"username": username, "password": PASSWORD})
        return out["objectId"], out["sessionToken"]

    def batch(self, ops: list[dict], token: str) -> list[dict]:
        results = []
        for i in range(0, len(ops), 50 if "1337" in self.base else 100):
            chunk = ops[i:i + (50 if "1337" in self.base else 100)]
            out = self.call("POST", "/batch", {"requests": chunk}, token=token)
            for item in out:
                if "error" in item:
                    raise RuntimeError(f"batch: {item['error']}")
            results.extend(out)
        return results

    def upload(self, token: str, i: int) -> str:
        text = f"Report {i}\nHbA1c 6.1 %\nGlucose 98 mg/dL\n".encode() * 20
        return self.call("POST", f"/files/report-{i}.txt", raw=text, token=token, content_type="text/plain")["name"]


def parse_acl(user_id: str) -> dict:
    return {user_id: {"read": True, "write": True}}


def load_user_native(api: Api, username: str, rnd: random.Random, patients: int, *, parse: bool,
                     scale: float = 1.0) -> dict:
    """Signup, `patients` profiles, their records through /batch. Returns what the drivers need."""
    user_id, token = api.signup(username)
    acl = {"ACL": parse_acl(user_id)} if parse else {}
    prof_ops = [{"method": "POST", "path": "/parse/classes/Profile",
                 "body": {"fullName": f"{username.title()} Member{k}", "birthDate": d(date(1950 + rnd.randrange(60), 1 + k, 1)),
                          "gender": rnd.choice(["female", "male"]),
                          "bloodType": rnd.choice(["O+", "A+", "B+", "AB-"]),
                          **({"user": ptr("_User", user_id)} if parse else {}), **acl}}
                for k in range(patients)]
    profiles = [r["success"]["objectId"] for r in api.batch(prof_ops, token)]
    n_records = patients
    ids: dict[str, list[str]] = {}
    for pid in profiles:
        n = counts(rnd, scale)
        files = [api.upload(token, k) for k in range(n["MedicalDocument"])]
        recs = native_records(rnd, pid, n, files)
        ops = [{"method": "POST", "path": f"/parse/classes/{cls}", "body": {**body, **acl}} for cls, body in recs]
        for (cls, _), r in zip(recs, api.batch(ops, token)):
            ids.setdefault(cls, []).append(r["success"]["objectId"])
        n_records += len(recs)
    return {"user": username, "userId": user_id, "token": token, "profiles": profiles, "records": n_records,
            "allergies": ids.get("Allergy", [])[:5], "labs": ids.get("LabResult", [])[:5]}


def run_native(args, parse: bool) -> None:
    api = Api(PARSE if parse else OURS + "/parse", parse=parse)
    if parse:
        ensure_parse_schema(api)
    users = max(1, round(args.records / (2 * PER_PATIENT)))
    tag = args.tag or uuid.uuid4().hex[:6]
    t0 = time.perf_counter()
    out: list[dict] = []
    with cf.ThreadPoolExecutor(args.threads) as pool:
        futs = [pool.submit(load_user_native, Api(api.base, parse=parse), f"u{tag}{i}", random.Random(f"{tag}{i}"),
                            2, parse=parse) for i in range(users)]
        for k, f in enumerate(cf.as_completed(futs)):
            out.append(f.result())
            if k % 20 == 0:
                print(f"  {k + 1}/{users} users, {sum(u['records'] for u in out)} records, "
                      f"{time.perf_counter() - t0:.0f}s", file=sys.stderr)
    dt = time.perf_counter() - t0
    total = sum(u["records"] for u in out)
    print(json.dumps({"via": "parse" if parse else "native", "users": users, "records": total,
                      "seconds": round(dt, 1), "records_per_s": round(total / dt)}))
    if args.probe:
        write_manifest(args, out, parse)


def ensure_parse_schema(api: Api) -> None:
    fields = {
        "Profile": {"user": {"type": "Pointer", "targetClass": "_User"}, "fullName": {"type": "String"},
                    "birthDate": {"type": "Date"}, "gender": {"type": "String"}, "bloodType": {"type": "String"}},
        "Allergy": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "substance": {"type": "String"},
                    "severity": {"type": "String"}, "reaction": {"type": "String"}, "recordedAt": {"type": "Date"},
                    "isActive": {"type": "Boolean"}},
        "Vaccination": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "vaccineName": {"type": "String"},
                        "dateAdministered": {"type": "Date"}, "dose": {"type": "String"}, "lotNumber": {"type": "String"}},
        "Medication": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "name": {"type": "String"},
                       "dose": {"type": "String"}, "frequency": {"type": "String"}, "active": {"type": "Boolean"},
                       "startDate": {"type": "Date"}},
        "LabResult": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "testName": {"type": "String"},
                      "value": {"type": "Number"}, "units": {"type": "String"}, "referenceRange": {"type": "String"},
                      "date": {"type": "Date"}},
        "MedicalDocument": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "file": {"type": "File"},
                            "documentType": {"type": "String"}, "title": {"type": "String"},
                            "uploadedAt": {"type": "Date"}, "isShared": {"type": "Boolean"}},
        "EmergencyContact": {"profile": {"type": "Pointer", "targetClass": "Profile"}, "name": {"type": "String"},
                             "relationship": {"type": "String"}, "phone": {"type": "String"}},
    }
    existing = {c["className"] for c in api.call("GET", "/schemas", master="myMasterKey")["results"]}
    for cls, f in fields.items():
        if cls not in existing:
            api.call("POST", f"/schemas/{cls}", {"className": cls, "fields": f}, master="myMasterKey")


def load_patient_fhir(http: requests.Session, token: str, body: bytes, entries: int) -> tuple[int, float, str]:
    t = time.perf_counter()
    r = http.post(OURS + "/fhir", data=body, timeout=300,
                  headers={"Content-Type": "application/fhir+json", "X-Parse-Session-Token": token,
                           "Prefer": "return=minimal"})
    dt = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"transaction: {r.status_code} {r.text[:800]}")
    loc = r.json()["entry"][0]["response"]["location"]
    return entries, dt, loc.split("/")[1]


def run_fhir(args) -> None:
    """Transaction ingest: one Bundle per patient, `--threads` clients at once; resources/s over the wall time."""
    api = Api(OURS + "/parse", parse=False)
    tag = args.tag or uuid.uuid4().hex[:6]
    patients = max(1, round(args.records / PER_PATIENT))
    users = [api.signup(f"f{tag}{i}") for i in range(max(1, patients // 2))]
    sessions = [requests.Session() for _ in range(args.threads)]
    # Made before the clock starts: a client sends data it has, and making it here took the machine's CPU
    # from the server under test.
    bundles = []
    for i in range(patients):
        rnd = random.Random(f"{tag}{i}")
        bundle = fhir_bundle(rnd, f"Fhir{i} Patient{tag}", counts(rnd))
        bundles.append((json.dumps(bundle).encode(), len(bundle["entry"])))

    def job(i: int):
        return load_patient_fhir(sessions[i % args.threads], users[i % len(users)][1], *bundles[i])

    import compare  # this folder: CPU of the server's and PostgreSQL's process trees, from /proc

    roots = {"server": compare.server_pid("ours"), "pg": compare.postmaster_pid()}
    cpu0 = {k: compare.cpu_seconds(pid) for k, pid in roots.items()}
    workers = compare.child_pids(roots["server"])
    worker0 = [compare.cpu_seconds(pid) for pid in workers]
    idle0 = compare.machine_idle_seconds()
    t0 = time.perf_counter()
    done = []
    with cf.ThreadPoolExecutor(args.threads) as pool:
        for k, res in enumerate(pool.map(job, range(patients))):
            done.append(res)
            if k % 20 == 0:
                print(f"  {k + 1}/{patients} bundles, {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    wall = time.perf_counter() - t0
    cpu = {k: compare.cpu_seconds(pid) - cpu0[k] for k, pid in roots.items()}
    worker_cpu = [compare.cpu_seconds(pid) - c for pid, c in zip(workers, worker0)]
    idle = compare.machine_idle_seconds() - idle0
    total = sum(n for n, _, _ in done)
    lat = sorted(dt for _, dt, _ in done)
    print(json.dumps({"via": "fhir-transaction", "bundles": patients, "resources": total, "seconds": round(wall, 1),
                      "resources_per_s": round(total / wall), "threads": args.threads,
                      "bundle_p50_ms": round(1000 * lat[len(lat) // 2], 1),
                      "bundle_p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
                      # while the clock ran (0 when not local): what a resource costs the machine
                      "server_cpu_ms_per_resource": round(1000 * cpu["server"] / total, 3),
                      "pg_cpu_ms_per_resource": round(1000 * cpu["pg"] / total, 3),
                      # the share of the machine's cores left idle while the clock ran
                      "machine_idle": round(idle / (wall * (os.cpu_count() or 1)), 2),
                      # each worker's share of the server's CPU: a keep-alive connection stays with the
                      # worker that accepted it, and a worker's Python runs on one core at a time
                      "worker_cpu_share": [round(c / max(sum(worker_cpu), 1e-9), 2) for c in worker_cpu]}))



def run_service(args) -> None:
    """In-process: the services the HTTP faces call, without HTTP (for the 1M step, where HTTP would take hours)."""
    from gateway import create_app
    from gateway.access import principal_for_user
    from gateway.db import new_object_id, utcnow
    from gateway.extensions import open_session
    from gateway.models import User
    from gateway.services.files import FileService
    from gateway.services.objects import ObjectService
    from gateway.services.users import UserService

    app = create_app()
    factory = app.extensions["phr_db"][1]
    tag = args.tag or uuid.uuid4().hex[:6]
    users = max(1, round(args.records / (2 * PER_PATIENT)))
    worker, nworkers = args.part
    t0 = time.perf_counter()
    total = 0
    pw_hash = None
    for i in range(worker, users, nworkers):
        rnd = random.Random(f"{tag}{i}")
        with open_session(factory, app.config) as s:
            if pw_hash is None:
                svc_user = UserService(s).create_user(f"s{tag}{i}", PASSWORD)
                pw_hash = svc_user.password_hash
                user = svc_user
            else:  # one scrypt hash for all: signups are not what this step measures
                now = utcnow()
                user = User(object_id=new_object_id(), created_at=now, updated_at=now, version=1,
                            username=f"s{tag}{i}", password_hash=pw_hash, role="patient")
                user.acl = {user.object_id: {"read": True, "write": True}}
                s.add(user)
                s.flush()
            p = principal_for_user(s, user)
            objects = ObjectService(s, p)
            for k in range(2):
                prof = objects.create("Profile", {"fullName": f"S{i} Member{k}", "gender": "female",
                                                  "birthDate": d(date(1950 + rnd.randrange(60), 1, 1))})
                pid = prof.row.object_id
                n = counts(rnd)
                files = FileService(s, p, secret=app.config["SECRET_KEY"].encode(),
                                    max_size=app.config["MAX_CONTENT_LENGTH"], url_ttl=3600)
                names = [files.upload(f"report-{j}.txt", b"Report\nHbA1c 6.1 %\n" * 20, "text/plain").name
                         for j in range(n["MedicalDocument"])]
                for cls, body in native_records(rnd, pid, n, names):
                    objects.create(cls, body)
                total += 1 + sum(n.values())
            s.commit()
        if (i // nworkers) % 20 == 0:
            el = time.perf_counter() - t0
            print(f"  part {worker}: user {i}/{users}, {total} records, {el:.0f}s, {total / el:.0f} rec/s",
                  file=sys.stderr, flush=True)
    dt = time.perf_counter() - t0
    print(json.dumps({"via": "service", "part": f"{worker}/{nworkers}", "records": total, "seconds": round(dt, 1),
                      "records_per_s": round(total / dt)}))


def make_big_patient(api: Api, username: str, parse: bool) -> dict:
    """The $everything probe: one patient with 500 resources (FHIR: Patient + 499 records)."""
    rnd = random.Random("big")
    _, token = api.signup(username)
    pid = api.batch([{"method": "POST", "path": "/parse/classes/Profile",
                      "body": {"fullName": "Big Record", "gender": "female"}}], token)[0]["success"]["objectId"]
    n = {"Allergy": 10, "Vaccination": 40, "Medication": 30, "LabResult": 414, "MedicalDocument": 3,
         "EmergencyContact": 2}
    files = [api.upload(token, k) for k in range(n["MedicalDocument"])]
    recs = native_records(rnd, pid, n, files)
    api.batch([{"method": "POST", "path": f"/parse/classes/{cls}", "body": body} for cls, body in recs], token)
    return {"user": username, "token": token, "profile": pid, "records": 1 + len(recs)}


def write_manifest(args, users: list[dict], parse: bool) -> None:
    api = Api(PARSE if parse else OURS + "/parse", parse=parse)
    manifest: dict[str, Any] = {"target": "parse" if parse else "ours", "base": api.base}
    # Probe user: a fresh login, its first profile (>= 20 lab results) and one of its allergies.
    probe = min(users, key=lambda u: u["user"])
    manifest["probe"] = {"token": probe["token"], "userId": probe["userId"], "profile": probe["profiles"][0],
                         "allergy": probe["allergies"][0], "lab": probe["labs"][0]}
    # Many users for the varying-auth driver: (token, allergy id, profile id)
    manifest["users"] = [{"token": u["token"], "allergy": u["allergies"][0], "profile": u["profiles"][0]}
                         for u in users if u["allergies"]][:200]
    if not parse:
        manifest["big"] = make_big_patient(api, f"big{uuid.uuid4().hex[:4]}", parse)
        # FHIR ids are the native objectIds
        manifest["fhir"] = {"patient": probe["profiles"][0], "observation": probe["labs"][0],
                            "allergy": probe["allergies"][0]}
    path = RUN_DIR / f"manifest-{manifest['target']}.json"
    path.write_text(json.dumps(manifest, indent=1))
    print(f"manifest -> {path}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--via", choices=["native", "fhir", "service", "parse"], required=True)
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe", action="store_true", help="also write the manifest the load drivers read")
    ap.add_argument("--tag", help="username prefix (default: random)")
    ap.add_argument("--part", type=lambda s: tuple(int(x) for x in s.split("/")), default=(0, 1),
                    help="service only: K/N runs the K-th of N interleaved slices (run N processes)")
    args = ap.parse_args()
    if args.via in ("native", "parse"):
        run_native(args, parse=args.via == "parse")
    elif args.via == "fhir":
        run_fhir(args)
    else:
        run_service(args)


if __name__ == "__main__":
    main()
