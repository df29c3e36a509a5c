"""Issue 2, 'Done when': tried as a new user would. On a fresh folder, with nothing configured (SQLite in
./instance, no DATABASE_URL, no keys), `phr-gateway demo` then `phr-gateway serve` (what `make run` does),
and the Parse JS SDK signs in as the README's demo patient and demo doctor.

Only PHR_BASE_URL is set, because the test serves on a free port instead of 8080 (file URLs are absolute)."""
from __future__ import annotations

import stat

import pytest
import requests

from tests.e2e.conftest import JS_DIR, ServerProcess, base_env, free_port, require_node, run_cli, run_node

pytestmark = pytest.mark.e2e

DEMO_STEPS = [
    "demo patient logIn",
    "demo patient finds her profiles",
    "demo patient finds her allergies",
    "demo patient sees her whole record",
    "demo doctor logIn",
    "demo doctor sees only the shared categories",
    "demo doctor cannot change what is shared read-only",
    "logOut",
]


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory):
    require_node()
    folder = tmp_path_factory.mktemp("fresh_clone")
    port = free_port()
    env = base_env(PHR_BASE_URL=f"http://127.0.0.1:{port}")
    first = run_cli(["demo"], env, cwd=folder)
    again = run_cli(["demo"], env, cwd=folder)
    server = ServerProcess(env=env, port=port, log_path=folder / "server.log", cwd=folder)
    try:
        server.start()
        yield folder, server, first, again
    finally:
        server.stop()


def test_demo_loads_into_the_default_sqlite_instance(fresh_demo):
    folder, _, first, again = fresh_demo
    assert first["users"]["patient"]["username"] == "demo"
    assert first["users"]["provider"]["username"] == "dr.demo"
    assert first["password"] == "demo-password"
    assert len(first["profiles"]) == 2
    assert again["profiles"] == first["profiles"], "demo is not idempotent"
    assert again["users"] == first["users"]
    instance = folder / "instance"
    assert (instance / "phr.sqlite3").is_file(), sorted(p.name for p in folder.iterdir())
    secrets = instance / "secrets.json"
    assert secrets.is_file() and stat.S_IMODE(secrets.stat().st_mode) == 0o600


def test_served_demo_answers_health_and_refuses_anonymous(fresh_demo):
    _, server, _, _ = fresh_demo
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    r = requests.get(f"{server.url}/parse/classes/Allergy", headers={"X-Parse-Application-Id": "phr"}, timeout=5)
    assert r.status_code == 404 and r.json()["code"] == 101  # nothing is public


def test_parse_sdk_signs_in_as_the_demo_users(fresh_demo):
    _, server, _, _ = fresh_demo
    result, proc = run_node(JS_DIR / "demo_sdk.js", {"PHR_E2E_SERVER_URL": f"{server.url}/parse"}, timeout=60)
    steps = result["steps"]
    assert "__main__" not in steps, steps["__main__"]["error"]["message"]
    failures = []
    for name in DEMO_STEPS:
        step = steps.get(name)
        if step is None:
            failures.append(f"step {name!r} did not run")
        elif not step["ok"]:
            err = step["error"]
            failures.append(f"step {name!r} failed: [{err['kind']}] code={err['code']} {err['message']}")
    assert not failures, "\n".join(failures) + f"\n\nserver log tail:\n{server.log_tail(2000)}"
    assert result["ok"] and proc.returncode == 0, proc.stderr[-2000:]
    assert steps["demo doctor sees only the shared categories"]["value"] == {
        "Profile": 1, "Allergy": 2, "Medication": 2, "LabResult": 3, "Vaccination": 0, "MedicalDocument": 0,
        "EmergencyContact": 0}
    assert "unhandled" not in server.log_tail(100_000)
