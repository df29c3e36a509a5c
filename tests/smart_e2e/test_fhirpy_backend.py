"""SMART Backend Services with real tools: a PyJWT-signed RS384 client assertion for a token, then
`fhirpy` reads with it: only what patients shared with the client's provider."""
from __future__ import annotations

import json
import time
import uuid

import jwt as pyjwt
import pytest
import requests
from fhirpy import SyncFHIRClient

from tests.smart.conftest import make_key
from tests.smart_e2e.conftest import _parse

pytestmark = pytest.mark.e2e


def test_backend_services_token_used_by_fhirpy(live_server, people, tmp_path):
    alice, carol = people["alice"], people["carol"]
    master = {"X-Parse-Application-Id": live_server.app_id, "X-Parse-Master-Key": live_server.master_key}
    doctor = requests.post(f"{live_server.parse_url}/users", json={"username": f"dr-{uuid.uuid4().hex[:6]}",
                           "password": "pw-1234567", "role": "provider"}, headers=master, timeout=30).json()
    provider = requests.post(f"{live_server.parse_url}/classes/Provider", headers=master, timeout=30, json={
        "name": "Rutherford Clinic", "kind": "organization"}).json()["objectId"]
    _parse(live_server, "POST", "/classes/SharedAccess", alice.token, json={
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": alice.profiles[0]},
        "grantee": {"__type": "Pointer", "className": "_User", "objectId": doctor["objectId"]},
        "provider": {"__type": "Pointer", "className": "Provider", "objectId": provider},
        "accessLevel": "read", "scope": ["labs"]})
    key = make_key("RS384")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.public_jwk]}))
    cid = live_server.cli("clients", "create", "--name", "Clinic EHR", "--jwks", str(jwks), "--scope",
                          "system/*.rs", "--provider", provider)["client_id"]
    conf = requests.get(f"{live_server.url}/fhir/.well-known/smart-configuration", timeout=30).json()
    now = int(time.time())
    assertion = pyjwt.encode({"iss": cid, "sub": cid, "aud": conf["token_endpoint"], "exp": now + 240,
                              "jti": str(uuid.uuid4())}, key.private_pem, algorithm="RS384",
                             headers={"kid": key.kid, "typ": "JWT"})
    r = requests.post(conf["token_endpoint"], timeout=30, data={
        "grant_type": "client_credentials", "scope": "system/Observation.rs system/Patient.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["expires_in"] <= 300 and "refresh_token" not in token
    fhir = SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token['access_token']}")
    labs = fhir.resources("Observation").fetch_all()
    assert labs and {o["subject"]["reference"].split("/")[-1] for o in labs} == {alice.profiles[0]}
    patients = fhir.resources("Patient").fetch_all()
    assert [p["id"] for p in patients] == [alice.profiles[0]]
    assert fhir.resources("Observation").search(patient=carol.profiles[0]).fetch_all() == []
    # the same assertion again is a replay
    again = requests.post(conf["token_endpoint"], timeout=30, data={
        "grant_type": "client_credentials", "scope": "system/Observation.rs",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
