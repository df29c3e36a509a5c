"""The npm `fhirclient` (SMART's client-js) completes a standalone launch in Node against the running
server: discovery from .well-known/smart-configuration, PKCE, our pages (signed in and approved as a
browser would), the code exchange, and reads confined to the chosen patient."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from tests.e2e.conftest import ROOT, free_port, require_node
from tests.smart_e2e.conftest import approve

pytestmark = pytest.mark.e2e
SCRIPT = ROOT / "tests" / "smart_e2e" / "js" / "client_js_launch.js"


def test_client_js_standalone_launch(live_server, people):
    node = require_node()
    assert (ROOT / "node_modules" / "fhirclient" / "package.json").exists(), "npm ci installs fhirclient"
    carol = people["carol"]
    port = free_port()
    app = f"http://127.0.0.1:{port}"
    cid = live_server.cli("clients", "create", "--name", "client-js app", "--public",
                          "--redirect-uri", f"{app}/callback")["client_id"]
    env = {"ISS": f"{live_server.url}/fhir", "CLIENT_ID": cid, "APP_PORT": str(port),
           "SCOPE": "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs offline_access",
           "OTHER_PATIENT": carol.profiles[1], "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([node, str(SCRIPT)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{app}/nothing", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        callback = approve(f"{app}/launch", carol.username, patient=carol.profiles[0])
        assert callback.startswith(f"{app}/callback?"), callback
        r = requests.get(callback, timeout=30)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    result = json.loads([line for line in out.splitlines() if line.strip()][-1])
    assert result["ok"], (result, err[-3000:])
    assert r.status_code == 200
    assert result["patient"] == carol.profiles[0] and result["patientName"] == "Carol Smith"
    assert result["labs"] == 2 and result["otherLabs"] == 0
    assert result["fhirUser"] == f"Patient/{carol.profiles[0]}"
    assert result["hasRefresh"] and result["needPatientBanner"] is True
