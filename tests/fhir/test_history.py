"""history (instance, type, system) with _since and _count (hl7.org/fhir/R4/http.html#history)."""
from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.fhir import synthea
from tests.fhir.conftest import body, outcome


def test_instance_history_create_update_delete(alice):
    rid = alice.record["AllergyIntolerance"][0]
    res = alice.fhir.read(f"AllergyIntolerance/{rid}")
    res["criticality"] = "low"
    alice.fhir.put(f"AllergyIntolerance/{rid}", res)
    alice.parse.put(f"/classes/Allergy/{rid}", {"notes": "checked by GP"})  # a native edit is a version too
    alice.fhir.delete(f"AllergyIntolerance/{rid}")
    h = body(alice.fhir.get(f"AllergyIntolerance/{rid}/_history"))
    assert h["type"] == "history" and h["total"] == 4
    methods = [(e["request"]["method"], e["response"]["etag"]) for e in h["entry"]]
    assert methods == [("DELETE", 'W/"4"'), ("PUT", 'W/"3"'), ("PUT", 'W/"2"'), ("POST", 'W/"1"')]
    assert "resource" not in h["entry"][0]
    assert h["entry"][2]["resource"]["criticality"] == "low"
    assert h["entry"][1]["resource"]["note"][0]["text"] == "checked by GP"
    outcome(alice.fhir.get(f"AllergyIntolerance/{rid}/_history/4"), 410)
    assert body(alice.fhir.get(f"AllergyIntolerance/{rid}/_history/3"))["meta"]["versionId"] == "3"


def test_type_history_since_and_count(alice, bob):
    h = body(alice.fhir.get("Observation/_history"))
    assert h["total"] == 4
    assert all(e["resource"]["subject"]["reference"] == alice.ref for e in h["entry"])
    time.sleep(0.01)
    mark = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    rid = alice.fhir.create(synthea.lab(alice.ref, 3, synthea.date(2025, 1, 1)))["id"]
    h = body(alice.fhir.get("Observation/_history", {"_since": mark}))
    assert [e["resource"]["id"] for e in h["entry"]] == [rid]
    h = body(alice.fhir.get("Observation/_history", {"_count": "2"}))
    assert len(h["entry"]) == 2 and h["entry"][0]["resource"]["id"] == rid  # newest first
    outcome(alice.fhir.get("Observation/_history", {"_since": "yesterday"}), 400)
    # Bob's history holds his own resources only
    h = body(bob.fhir.get("_history"))
    assert {e["fullUrl"].split("/fhir/")[1] for e in h["entry"]} >= {bob.ref}
    assert not any(alice.patient_id in e["fullUrl"] for e in h["entry"])


def test_history_of_someone_elses_resource_is_not_found(alice, bob):
    outcome(bob.fhir.get(f"{alice.ref}/_history"), 404)
    outcome(bob.fhir.get(f"{alice.ref}/_history/1"), 404)
