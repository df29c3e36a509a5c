"""Backup and restore (`phr-gateway backup` / `restore`, gateway/ops/backup.py): records made through the API
are backed up while the app runs, restored into a fresh instance (new instance folder, new database) and
read back through the native and FHIR APIs; the session token, a signed file URL (the instance secret), the
generated master key and the id_token signing keys still work. A damaged backup, or a database that is not
empty, is refused with nothing changed."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from sqlalchemy import text

from gateway import create_app
from gateway.db import make_engine
from tests.conftest import APP_ID, DATABASES, POSTGRES_URL, fresh_database, pointer, schema_url
from tests.e2e.conftest import PHR_GATEWAY, base_env, run_cli

BASE = "http://testserver"


@contextlib.contextmanager
def instance(url: str, folder: Path):
    """The app on this database and instance folder, its master key its own (from secrets.json)."""
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder), "APP_ID": APP_ID, "BASE_URL": BASE})
    try:
        yield app
    finally:
        app.extensions["phr_live"].stop()
        app.extensions["phr_db"][0].dispose()


@contextlib.contextmanager
def empty_postgres_database(schema: str):
    """A new, empty PostgreSQL database (dropped afterwards) and its URL with the source's search_path."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{make_url(POSTGRES_URL).database}_restore_{os.getpid()}"

    def admin(statement: str) -> None:  # CREATE/DROP DATABASE run outside a transaction
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(statement)

    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield schema_url(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", schema)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli_fails(args: list[str], env: dict[str, str]) -> str:
    r = subprocess.run([PHR_GATEWAY, *args], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode != 0, r.stdout
    return r.stderr


def make_records(app) -> dict:
    """A user, a profile, an allergy (native), an Observation (FHIR), a document with a file; what a client
    holds afterwards (token, ids, a signed file URL) and what the API answers now."""
    c = app.test_client()
    h = {"X-Parse-Application-Id": APP_ID, "Content-Type": "application/json"}
    r = c.post("/parse/users", json={"username": "restored-rosalind", "password": "pw-Backup-2468"},
               headers=h)
    assert r.status_code == 201, r.json
    token = r.json["sessionToken"]
    h["X-Parse-Session-Token"] = token
    pid = c.post("/parse/classes/Profile", json={"fullName": "Rosalind Restore"}, headers=h).json["objectId"]
    rid = c.post("/parse/classes/Allergy", headers=h, json={
        "profile": pointer("Profile", pid), "substance": "Cashew", "severity": "severe",
        "reaction": "Anaphylaxis"}).json["objectId"]
    fhir = {"X-Parse-Session-Token": token, "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json"}
    obs = c.post("/fhir/Observation", headers=fhir, data=orjson.dumps({
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
        "valueQuantity": {"value": 97, "unit": "mg/dL", "system": "http://unitsofmeasure.org",
                          "code": "mg/dL"},
        "effectiveDateTime": "2026-03-04T08:00:00Z"}))
    assert obs.status_code == 201, obs.get_data(as_text=True)
    stored = c.post("/parse/files/panel.txt", data=b"glucose 97 mg/dL\n", content_type="text/plain",
                    headers={k: v for k, v in h.items() if k != "Content-Type"}).json
    doc = c.post("/parse/classes/MedicalDocument", headers=h, json={
        "profile": pointer("Profile", pid), "file": {"__type": "File", "name": stored["name"]},
        "documentType": "Lab report", "title": "Panel"}).json["objectId"]
    file_url = c.get(f"/parse/classes/MedicalDocument/{doc}", headers=h).json["file"]["url"]
    return {"token": token, "pid": pid, "rid": rid, "obs": obs.json["id"], "file_url": file_url}


def answers(app, held: dict) -> dict:
    """What the API answers for the records, as the same client (its token, its signed URL)."""
    c = app.test_client()
    h = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": held["token"]}
    fhir = {"X-Parse-Session-Token": held["token"], "Accept": "application/fhir+json"}
    secrets = json.loads((Path(app.config["INSTANCE_PATH"]) / "secrets.json").read_text())
    parts = urlsplit(held["file_url"])
    out = {
        "me": c.get("/parse/users/me", headers=h).json["username"],
        "allergy": c.get(f"/parse/classes/Allergy/{held['rid']}", headers=h).json,
        "profiles": c.get("/parse/classes/Profile", headers=h).json,
        "observation": c.get(f"/fhir/Observation/{held['obs']}", headers=fhir).json,
        "patient": c.get(f"/fhir/Patient/{held['pid']}", headers=fhir).json,
        "file": (lambda r: (r.status_code, r.data))(c.get(parts.path + "?" + parts.query)),
        "master": c.get("/parse/users", headers={"X-Parse-Application-Id": APP_ID,
                                                  "X-Parse-Master-Key": secrets["master_key"]}).status_code,
        "jwks": sorted(k["kid"] for k in c.get("/oauth/jwks").json["keys"]),
    }
    assert out["file"] == (200, b"glucose 97 mg/dL\n") and out["master"] == 200, out
    return out


@pytest.mark.parametrize("kind, form", [("sqlite", "folder"), ("postgresql", "archive")])
def test_a_backup_restored_into_a_fresh_instance_answers_the_same(kind, form, tmp_path, tmp_path_factory):
    if kind not in DATABASES:
        pytest.skip(f"{kind} is not among the test databases")
    schema = f"backup_src_{os.getpid()}"
    source_url = fresh_database(kind, tmp_path_factory, schema)
    output = tmp_path / ("backup" if form == "folder" else "backup.tar.gz")
    source_env = base_env(DATABASE_URL=source_url, PHR_INSTANCE_PATH=str(tmp_path / "source"))
    try:
        with instance(source_url, tmp_path / "source") as app:
            held = make_records(app)
            app.test_client().get("/oauth/jwks")  # the id_token signing key exists from now on
            before = answers(app, held)
            made = run_cli(["backup", "--output", str(output)], source_env)  # while the app is up
        assert made["database"] == kind and "secrets.json" in made["files"]
        if form == "archive":
            assert output.stat().st_mode & 0o077 == 0  # it holds the secrets: owner only

        with contextlib.ExitStack() as stack:
            if kind == "sqlite":
                target_url = f"sqlite:///{tmp_path / 'target' / 'phr.sqlite3'}"
            else:
                target_url = stack.enter_context(empty_postgres_database(schema))
            target_env = base_env(DATABASE_URL=target_url, PHR_INSTANCE_PATH=str(tmp_path / "target"))
            if form == "archive":  # on stdin, as into a container
                done = subprocess.run([PHR_GATEWAY, "restore", "-"], env=target_env, stdin=output.open("rb"),
                                      capture_output=True, timeout=300, check=False)
                assert done.returncode == 0, done.stderr.decode()[-3000:]
                restored = json.loads(done.stdout.decode().strip().splitlines()[-1])
            else:
                restored = run_cli(["restore", str(output)], target_env)
            assert restored["revision"] == made["revision"]
            assert (tmp_path / "target" / "secrets.json").stat().st_mode & 0o077 == 0
            with instance(target_url, tmp_path / "target") as app:
                assert answers(app, held) == before
            # Once more into the same instance: refused, nothing changed.
            assert "not empty" in cli_fails(["restore", str(output)], target_env)
            with instance(target_url, tmp_path / "target") as app:
                assert answers(app, held) == before
    finally:
        if kind == "postgresql":
            admin = make_engine(POSTGRES_URL)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


def test_a_damaged_or_foreign_backup_is_refused(tmp_path, tmp_path_factory):
    url = fresh_database("sqlite", tmp_path_factory, "backup_damaged")
    env = base_env(DATABASE_URL=url, PHR_INSTANCE_PATH=str(tmp_path / "source"))
    with instance(url, tmp_path / "source") as app:
        make_records(app)
    run_cli(["backup", "--output", str(tmp_path / "b")], env)
    target = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 't' / 'phr.sqlite3'}",
                      PHR_INSTANCE_PATH=str(tmp_path / "t"))
    with (tmp_path / "b" / "phr.sqlite3").open("r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage\x00")
    assert "damaged" in cli_fails(["restore", str(tmp_path / "b")], target)
    assert not (tmp_path / "t" / "phr.sqlite3").exists() and not (tmp_path / "t" / "secrets.json").exists()
    (tmp_path / "nothing").mkdir()
    assert "no readable manifest.json" in cli_fails(["restore", str(tmp_path / "nothing")], target)
    assert "not empty" in cli_fails(["backup", "--output", str(tmp_path / "b")], env)
