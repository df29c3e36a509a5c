"""Issue 4, 'Done when': the npm `fhir-kit-client` (package.json devDependencies) against the real server on
SQLite and PostgreSQL: search, nextPage, read, create, and a 404 read that yields an OperationOutcome. The
Node script (js/fhir_kit_flow.mjs) prints what it got; every body it received is checked here as strict R4."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import JS_DIR, ROOT, run_node
from tests.e2e.fhir_clients import make_live_user
from tests.fhir.conftest import assert_r4

pytestmark = pytest.mark.e2e

STEPS = ["search", "read", "create", "read 404 yields an OperationOutcome"]


def test_fhir_kit_client(live_server):
    if not (ROOT / "node_modules" / "fhir-kit-client" / "package.json").exists():
        pytest.fail("node_modules/fhir-kit-client is missing: run `npm ci`")
    user = make_live_user(live_server, labs=25)
    result, proc = run_node(JS_DIR / "fhir_kit_flow.mjs",
                            {"FHIR_BASE": user.base, "PHR_TOKEN": user.token, "PATIENT_ID": user.patient_id})
    for name in STEPS:
        step = result["steps"].get(name)
        assert step is not None, f"step {name!r} did not run:\n{proc.stderr[-2000:]}"
        assert step["ok"], f"{name}: {step.get('error')}"
    assert result["steps"]["search"]["value"] == {"pages": 3, "ids": 25}
    assert result["steps"]["read 404 yields an OperationOutcome"]["value"] == "not-found"
    assert len(result["bodies"]) >= 6
    for body in result["bodies"]:
        assert_r4(body)
