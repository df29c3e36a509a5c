"""Shared set-up of the real-FHIR-client e2e tests: a user made on the live server with the master key
(Parse REST), a session token for the FHIR face, and a Synthea-style record imported through a FHIR
transaction; every body a client receives is then checked against the strict R4 models."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests

from tests.fhir import synthea
from tests.fhir.conftest import assert_r4

FHIR_JSON = "application/fhir+json"


@dataclass
class LiveUser:
    base: str  # the FHIR base, http://127.0.0.1:<port>/fhir
    token: str
    patient_id: str
    labs: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Parse-Session-Token": self.token, "Accept": FHIR_JSON}


def make_live_user(live, labs: int = 25) -> LiveUser:
    name = f"fhir-{secrets.token_hex(4)}"
    r = requests.post(f"{live.parse_url}/users", json={"username": name, "password": "pw-123456"},
                      headers=live.master_headers(), timeout=10)
    assert r.status_code == 201, r.text
    token = r.json()["sessionToken"]
    base = f"{live.url}/fhir"
    bundle = synthea.record_bundle(family="Rutherford", given=name, labs=labs, vaccines=1, allergies=1, meds=1,
                                   mrn=name)
    r = requests.post(base, json=bundle, timeout=30,
                      headers={"X-Parse-Session-Token": token, "Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
    assert r.status_code == 200, r.text
    result = r.json()
    assert_r4(result)
    locations = [e["response"]["location"].split("/") for e in result["entry"]]
    return LiveUser(base, token, locations[0][1], [rid for rt, rid, *_ in locations if rt == "Observation"])
