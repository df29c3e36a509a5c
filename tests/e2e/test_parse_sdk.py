"""Issue 2, 'Done when': the real Parse JS SDK (npm `parse` from package.json) against the real server
(`phr-gateway serve`, gunicorn, 2 workers) on SQLite and on PostgreSQL.

The Node script (js/parse_sdk_flow.js) performs every step and prints its results as JSON; this test checks
them one by one, in the script's order, so a failure names the step that failed."""
from __future__ import annotations

import json
import os
import secrets
import time

import pytest
import requests

from tests.e2e.conftest import JS_DIR, run_node

pytestmark = pytest.mark.e2e

#: Every step the script must run and pass, in order (a step missing from the output is a failure too).
STEPS = [
    "signUp",
    "signUp duplicate username rejected",
    "logIn wrong password rejected",
    "logIn",
    "Parse.User.me",
    "currentAsync + fetch",
    "save Profile with pointer and ACL",
    "save Allergy with pointer and ACL",
    "Parse.Object.saveAll",
    "query equalTo pointer",
    "query containedIn",
    "query greaterThan date",
    "query ascending/descending",
    "query limit/skip",
    "query count",
    "query include",
    "query matchesQuery",
    "Parse.File upload",
    "MedicalDocument with file",
    "download file.url()",
    "update",
    "destroy",
    "second user signUp",
    "second user: find and count see nothing",
    "second user: get answers 101",
    "second user: pointer, containedIn, greaterThan, matchesQuery, include see nothing",
    "second user: cannot change, delete or add to the first user records",
    "share allergies with the provider (SharedAccess read)",
    "provider logIn",
    "provider sees the shared allergies and nothing else",
    "provider cannot change allergies with a read grant",
    "grant expired: provider loses the allergies",
    "grant renewed: provider sees the allergies again",
    "grant revoked: provider loses the allergies",
    "logOut",
]


@pytest.fixture(scope="module")
def sdk_run(live_server):
    """Make the provider account the way DESIGN.md says (CLI) and its Provider record (master key), then run
    the script once per server."""
    run_id = f"{int(time.time()) % 100000}{secrets.token_hex(2)}"
    doctor = live_server.cli("users", "create", "--username", f"dr_{run_id}", "--password", "dr-pw-123",
                             "--role", "provider")
    assert doctor["role"] == "provider"
    r = requests.post(f"{live_server.parse_url}/classes/Provider", headers=live_server.master_headers(), timeout=10,
                      data=json.dumps({"name": f"Dr. {run_id}", "kind": "practitioner",
                                       "user": {"__type": "Pointer", "className": "_User",
                                                "objectId": doctor["objectId"]}}))
    assert r.status_code == 201, r.text
    env = {
        "PHR_E2E_SERVER_URL": live_server.parse_url,
        "PHR_E2E_APP_ID": live_server.app_id,
        "PHR_E2E_JS_KEY": live_server.javascript_key,
        "PHR_E2E_RUN_ID": run_id,
        "PHR_E2E_PROVIDER_USERNAME": f"dr_{run_id}",
        "PHR_E2E_PROVIDER_PASSWORD": "dr-pw-123",
        "PHR_E2E_PROVIDER_USER_ID": doctor["objectId"],
        "PHR_E2E_PROVIDER_ID": r.json()["objectId"],
    }
    timeout = float(os.environ.get("PHR_E2E_NODE_TIMEOUT", "60"))
    result, proc = run_node(JS_DIR / "parse_sdk_flow.js", env, timeout=timeout)
    return result, proc, live_server


def _describe(name: str, step: dict) -> str:
    err = step.get("error") or {}
    out = f"step {name!r} failed: [{err.get('kind')}] code={err.get('code')} {err.get('message')}"
    if err.get("stack"):
        out += f"\n{err['stack']}"
    return out


def test_parse_sdk_flow(sdk_run):
    result, proc, server = sdk_run
    steps = result["steps"]
    crash = steps.get("__main__")
    assert crash is None, f"the script crashed: {crash['error']['message']}\nstderr:\n{proc.stderr[-2000:]}"
    failures = []
    for name in STEPS:
        step = steps.get(name)
        if step is None:
            failures.append(f"step {name!r} did not run")
        elif not step["ok"]:
            failures.append(_describe(name, step))
    unknown = [n for n in result["order"] if n not in STEPS]
    assert not failures, (f"[{server.kind}] {len(failures)} of {len(STEPS)} steps failed; first: "
                          + "\n\n".join(failures) + f"\n\nserver log tail:\n{server.process.log_tail(2000)}")
    assert not unknown, f"steps not checked by this test: {unknown}"
    assert result["ok"] is True and proc.returncode == 0, proc.stderr[-2000:]


def test_sdk_results_have_the_expected_values(sdk_run):
    """Spot checks on values the script returned (beyond its own expectations)."""
    result, _, _ = sdk_run
    steps = result["steps"]
    if not all(steps.get(n, {}).get("ok") for n in STEPS):
        pytest.skip("covered by test_parse_sdk_flow")
    assert steps["Parse.User.me"]["value"]["role"] == "patient"  # public signup makes patients only
    assert steps["query count"]["value"] == {"n": 4, "all": 5}
    assert steps["second user: find and count see nothing"]["value"] == {
        cls: [0, 0] for cls in ["Profile", "Allergy", "Medication", "LabResult", "Vaccination", "EmergencyContact",
                                "MedicalDocument", "SharedAccess"]}
    assert steps["provider cannot change allergies with a read grant"]["value"]["updateCode"] == 101
    assert steps["grant revoked: provider loses the allergies"]["value"]["allergies"] == []


def test_server_log_has_no_unhandled_errors(sdk_run):
    """No request of the SDK run hit the 500 path (the server logs 'unhandled ...' for those)."""
    _, _, server = sdk_run
    log = server.process.log_tail(200_000)
    assert "unhandled" not in log and "Traceback" not in log, log[-3000:]
