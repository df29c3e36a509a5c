"""The `phr-gateway` command (DESIGN.md, 'Interfaces'): commands that create things print one JSON object
on the last line of stdout; errors go to stderr with a non-zero exit. Run in-process with click's CliRunner
against a temporary SQLite database (PHR_INSTANCE_PATH + DATABASE_URL), plus one real subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from gateway import create_app
from gateway.cli import main


@pytest.fixture
def env(tmp_path):
    instance = tmp_path / "instance"
    return {"PHR_INSTANCE_PATH": str(instance), "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
            "PHR_APP_ID": "", "PHR_MASTER_KEY": "", "PHR_REST_API_KEY": "", "PHR_JAVASCRIPT_KEY": ""}


@pytest.fixture
def run(env):
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def last_json(result) -> dict:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, result.stdout
    return orjson.loads(lines[-1])


@pytest.fixture
def migrated(run):
    r = run("db", "upgrade")
    assert r.exit_code == 0, r.stderr
    return run


def login(env, username, password):
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "INSTANCE_PATH": env["PHR_INSTANCE_PATH"],
                      "APP_ID": None, "TESTING": True})
    return app.test_client().post("/parse/login", json={"username": username, "password": password})


def test_db_upgrade_is_idempotent(run):
    assert run("db", "upgrade").exit_code == 0
    r = run("db", "upgrade")
    assert r.exit_code == 0 and "head" in r.stderr


@pytest.mark.parametrize("role", ["patient", "caregiver", "provider", "admin"])
def test_users_create_prints_the_object_id(migrated, env, role):
    r = migrated("users", "create", "--username", "dr.who", "--password", "tardis-pw", "--email", "dr@example.org",
                 "--role", role)
    assert r.exit_code == 0, r.stderr
    out = last_json(r)
    assert len(out["objectId"]) == 10 and out["role"] == role
    login_r = login(env, "dr.who", "tardis-pw")
    assert login_r.status_code == 200
    assert login_r.json["objectId"] == out["objectId"] and login_r.json["role"] == role


def test_users_create_default_role_is_patient(migrated):
    assert last_json(migrated("users", "create", "--username", "p", "--password", "pw"))["role"] == "patient"


@pytest.mark.parametrize("args, message", [
    (["--username", "taken", "--password", "pw"], "already exists"),
    (["--username", "x", "--password", "pw", "--email", "not-an-email"], "Email"),
    (["--username", "x", "--password", ""], "password"),
])
def test_users_create_errors_go_to_stderr_with_non_zero_exit(migrated, args, message):
    assert migrated("users", "create", "--username", "taken", "--password", "pw").exit_code == 0
    r = migrated("users", "create", *args)
    assert r.exit_code != 0
    assert message in r.stderr and r.stdout.strip() == ""


def test_users_create_refuses_an_unknown_role(migrated):
    r = migrated("users", "create", "--username", "x", "--password", "pw", "--role", "superuser")
    assert r.exit_code == 2 and "superuser" in r.stderr and r.stdout.strip() == ""


def test_users_create_requires_username_and_password(migrated):
    r = migrated("users", "create", "--username", "x")
    assert r.exit_code != 0 and "--password" in r.stderr


def test_demo_loads_signs_in_and_is_idempotent(run, env):
    r = run("demo")
    assert r.exit_code == 0, r.stderr
    out = last_json(r)
    assert out["users"]["patient"]["username"] == "demo" and out["password"] == "demo-password"
    assert len(out["profiles"]) == 2
    again = last_json(run("demo"))
    assert again["profiles"] == out["profiles"]
    patient = login(env, "demo", "demo-password")
    assert patient.status_code == 200
    doctor = login(env, "dr.demo", "demo-password")
    assert doctor.status_code == 200 and doctor.json["role"] == "provider"


def test_demo_data_follows_the_access_policy(run, env):
    run("demo")
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "INSTANCE_PATH": env["PHR_INSTANCE_PATH"],
                      "APP_ID": None, "TESTING": True})
    c = app.test_client()

    def token(u):
        return c.post("/parse/login", json={"username": u, "password": "demo-password"}).json["sessionToken"]

    def count(tok, cls):
        return c.get(f"/parse/classes/{cls}", query_string={"count": "1", "limit": "0"},
                     headers={"X-Parse-Session-Token": tok}).json["count"]

    patient, doctor = token("demo"), token("dr.demo")
    assert count(patient, "Allergy") == 3 and count(patient, "Profile") == 2
    assert count(doctor, "Allergy") == 2  # shared: Alex's allergies, not Sam's
    assert count(doctor, "Vaccination") == 0  # immunizations are not in the grant
    assert count(doctor, "Profile") == 1


def test_users_create_works_on_a_fresh_instance(run):
    r = run("users", "create", "--username", "first", "--password", "pw")
    assert r.exit_code == 0, r.stderr
    assert last_json(r)["objectId"]


def test_console_script_runs_as_a_subprocess(migrated, env):
    exe = Path(sys.executable).with_name("phr-gateway")
    assert migrated("users", "create", "--username", "sub", "--password", "pw").exit_code == 0
    dup = subprocess.run([str(exe), "users", "create", "--username", "sub", "--password", "pw"],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert dup.returncode != 0 and "already exists" in dup.stderr and dup.stdout.strip() == ""
    ok = subprocess.run([str(exe), "users", "create", "--username", "sub2", "--password", "pw", "--role", "provider"],
                        env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout.strip().splitlines()[-1])["role"] == "provider"


def test_serve_refuses_a_port_in_use(migrated):
    """At once and with the reason, before gunicorn starts (it would retry binding for seconds)."""
    import socket

    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        r = migrated("serve", "--port", str(busy.getsockname()[1]))
    finally:
        busy.close()
    assert r.exit_code != 0 and "cannot listen" in r.stderr, (r.exit_code, r.output)


def test_serve_keeps_a_pooled_connection_per_thread(migrated, monkeypatch):
    """Fewer pooled connections than request threads made a new PostgreSQL connection per request under
    load (docs/PERFORMANCE.md): serve sizes the pool from --threads unless PHR_DB_POOL_SIZE says otherwise."""
    import gateway.cli

    seen = []

    def stop_here(host, port):
        seen.append(os.environ.get("PHR_DB_POOL_SIZE"))
        raise SystemExit(3)

    monkeypatch.setattr(gateway.cli, "_check_port_free", stop_here)
    monkeypatch.setenv("PHR_DB_POOL_SIZE", "")  # so that monkeypatch puts back what was there before
    monkeypatch.delenv("PHR_DB_POOL_SIZE")
    migrated("serve", "--threads", "8", "--port", "1")
    assert seen == ["10"]
