"""JSON Patch (RFC 6902) on FHIR resources (hl7.org/fhir/R4/http.html#patch)."""
from __future__ import annotations

from tests.fhir.conftest import body, outcome


def test_patch_replaces_and_versions(alice):
    rid = alice.record["Observation"][0]
    r = alice.fhir.patch(f"Observation/{rid}", [{"op": "replace", "path": "/valueQuantity/value", "value": 99.5},
                                                {"op": "add", "path": "/note", "value": [{"text": "fasting"}]}])
    res = body(r)
    assert res["valueQuantity"]["value"] == 99.5 and res["note"] == [{"text": "fasting"}]
    assert r.headers["ETag"] == 'W/"2"'
    assert alice.parse.get(f"/classes/LabResult/{rid}").json["value"] == 99.5  # the same row


def test_patch_with_if_match(alice):
    rid = alice.record["Observation"][0]
    ops = [{"op": "replace", "path": "/status", "value": "amended"}]
    outcome(alice.fhir.patch(f"Observation/{rid}", ops, headers={"If-Match": 'W/"3"'}), 412)
    assert body(alice.fhir.patch(f"Observation/{rid}", ops, headers={"If-Match": 'W/"1"'}))["status"] == "amended"


def test_patch_errors(alice, bob):
    rid = alice.record["Observation"][0]
    outcome(alice.fhir.patch(f"Observation/{rid}", {"op": "replace"}), 400)  # not an array
    outcome(alice.fhir.patch(f"Observation/{rid}", [{"op": "remove", "path": "/nope"}]), 422)
    outcome(alice.fhir.patch(f"Observation/{rid}", [{"op": "test", "path": "/status", "value": "draft"}]), 422)
    outcome(alice.fhir.patch(f"Observation/{rid}", [{"op": "replace", "path": "/status", "value": "bogus"}]), 422)
    outcome(alice.fhir.patch(f"Observation/{rid}", [{"op": "remove", "path": "/code"}]), 422)  # code is 1..1
    outcome(bob.fhir.patch(f"Observation/{rid}", [{"op": "replace", "path": "/status", "value": "final"}]), 404)
    assert alice.fhir.read(f"Observation/{rid}")["meta"]["versionId"] == "1"  # nothing was written
    alice.fhir.delete(f"Observation/{rid}")
    outcome(alice.fhir.patch(f"Observation/{rid}", [{"op": "replace", "path": "/status", "value": "final"}]), 410)
