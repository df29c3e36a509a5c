"""Issue 8, 'Done when': the Parse JS SDK's LiveQuery client (npm `parse`) against the real server receives
the event of a change made through the FHIR API within a second, and a user who may not see that profile
receives nothing (js/livequery.js does the client side). The SDK also hands update listeners the object
before the change (`original`), and a subscription watching a field the change left alone hears nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.live_e2e.conftest import run_node
from tests.live_e2e.rest import pointer, signup

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).parent / "js" / "livequery.js"


def test_livequery_event_of_a_fhir_change_reaches_the_owner_only(ws_server):
    _, alice = signup(ws_server, "alice")
    _, bob = signup(ws_server, "bob")
    pid = alice.parse("POST", "/classes/Profile", {"fullName": "Alice Example"}, expect=201)["objectId"]
    oid = alice.parse("POST", "/classes/Allergy", {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
                                                   "profile": pointer("Profile", pid)}, expect=201)["objectId"]
    result, proc = run_node(SCRIPT, {
        "PHR_E2E_URL": ws_server.url, "PHR_E2E_APP_ID": ws_server.app_id, "PHR_E2E_JS_KEY": ws_server.javascript_key,
        "PHR_E2E_ALICE_TOKEN": alice.token, "PHR_E2E_BOB_TOKEN": bob.token, "PHR_E2E_PROFILE_ID": pid,
        "PHR_E2E_ALLERGY_ID": oid,
    })
    context = f"{result}\n{proc.stderr[-2000:]}\nserver log:\n{ws_server.process.log_tail()}"
    assert result["ok"], context
    assert result["putStatus"] == 200, context
    events = result["alice"]["events"]
    assert [(e["op"], e["objectId"], e["className"]) for e in events] == [("update", oid, "Allergy")], context
    assert events[0]["notes"] == "changed through FHIR" and events[0]["substance"] == "Peanut"
    assert events[0]["ms"] is not None and events[0]["ms"] < 1000, context
    assert events[0]["original"] == {"id": oid, "notes": None}, context
    assert result["bob"]["events"] == [], context
    assert result["watching"]["events"] == [], context  # it watches `severity`; the change was a note
    assert result["alice"]["errors"] == result["bob"]["errors"] == result["watching"]["errors"] == [], context
