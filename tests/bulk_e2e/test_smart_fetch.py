"""The PyPI `smart-fetch` (SMART's Cumulus bulk client) against the real server (issue 7, "Done when"):
SMART Backend Services with a registered JWKS (private_key_jwt, RS384), `smart-fetch bulk` at system and
at Group level, and every line of every file it downloaded validates as R4 (fhirkit-rs and the strict
fhirclient models, through conformance.validate.validate_r4). The client's provider sees only what was
shared with it, and the Group is the patients who shared."""
from __future__ import annotations

import gzip
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from conformance.validate import validate_r4
from tests.e2e.conftest import PHR_GATEWAY, base_env, live_server  # noqa: F401  (the fixture)
from tests.smart_e2e.conftest import _parse, people  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

VENV_BIN = Path(sys.executable).parent
SMART_FETCH = str(VENV_BIN / "smart-fetch") if (VENV_BIN / "smart-fetch").exists() else shutil.which("smart-fetch")
#: smart-fetch knows a fixed list of US Core types (MedicationStatement is not one); "all" is that list
#: cut down to the types our CapabilityStatement lists.
TYPES = "all"


def _require_tools(server) -> None:
    if SMART_FETCH is None:
        pytest.skip("smart-fetch is not installed: pip install -e '.[test]' (PyPI smart-fetch)")
    r = subprocess.run([PHR_GATEWAY, "clients", "--help"], env=server.env, capture_output=True, text=True,
                       timeout=60, check=False)
    if r.returncode != 0:
        pytest.skip("`phr-gateway clients` is missing: SMART Backend Services (client registration with a JWKS) "
                    "has not landed, so smart-fetch has no way to get a token")


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    """An RS384 key pair: the public JWKS we register, the private JWKS smart-fetch signs with."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(8)
    public_jwk = {**RSAAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": "RS384", "use": "sig"}
    private_jwk = {**RSAAlgorithm.to_jwk(private, as_dict=True), "kid": kid, "alg": "RS384", "key_ops": ["sign"]}
    # smart-fetch tells a JWKS from a PEM by the file name's ending.
    pub, priv = tmp_path / "public.jwks", tmp_path / "private.jwks"
    pub.write_text(json.dumps({"keys": [public_jwk]}))
    priv.write_text(json.dumps({"keys": [private_jwk]}))
    priv.chmod(0o600)
    return pub, priv


def _smart_fetch(server, client_id: str, key: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [SMART_FETCH, "bulk", "--fhir-url", f"{server.url}/fhir", "--smart-client-id", client_id,
           "--smart-key", str(key), "--type", TYPES, "--no-compression", *extra, str(out)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False,
                           env={**base_env(), "NO_COLOR": "1", "TERM": "dumb"})
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"smart-fetch did not finish in 180 s:\n{(e.stdout or b'')[-3000:]!r}\n{(e.stderr or b'')[-3000:]!r}"
                    f"\nserver log:\n{server.process.log_tail()}")
    assert r.returncode == 0, (f"smart-fetch failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n"
                               f"server log:\n{server.process.log_tail()}")
    return r


def _resources(folder: Path) -> dict[str, list[dict]]:
    """type -> every resource in the NDJSON files smart-fetch wrote (its own log files left out)."""
    out: dict[str, list[dict]] = {}
    files = [p for p in folder.rglob("*") if p.is_file() and (p.name.endswith(".ndjson") or p.name.endswith(".ndjson.gz"))]
    for path in files:
        if path.name.startswith("log.") or path.name.startswith("."):
            continue
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        for line in raw.splitlines():
            if line.strip():
                resource = json.loads(line)
                out.setdefault(resource["resourceType"], []).append(resource)
    return out


def _assert_r4(found: dict[str, list[dict]]) -> None:
    for rt, resources in found.items():
        for resource in resources:
            problems = validate_r4(resource)
            assert not problems, f"{rt}/{resource.get('id')}: " + "\n".join(problems)


@pytest.fixture(scope="module")
def export_worker(live_server):  # noqa: F811
    """On PostgreSQL, export jobs run in `phr-gateway worker` processes beside the web processes (on SQLite
    `serve` runs one in each web process): start one for this module, stop it after."""
    if live_server.kind == "sqlite":
        yield None
        return
    log = open(Path(live_server.instance_path) / "worker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([PHR_GATEWAY, "worker"], env=live_server.env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def clinic(live_server, people, export_worker, tmp_path_factory):  # noqa: F811
    """A provider that Alice shared her labs with, and a back-end client registered for it with a JWKS."""
    _require_tools(live_server)
    master = {"X-Parse-Application-Id": live_server.app_id, "X-Parse-Master-Key": live_server.master_key}
    provider = requests.post(f"{live_server.parse_url}/classes/Provider", headers=master, timeout=30, json={
        "name": "Bulk Clinic", "kind": "organization"}).json()["objectId"]
    alice = people["alice"]
    _parse(live_server, "POST", "/classes/SharedAccess", alice.token, json={
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": alice.profiles[0]},
        "provider": {"__type": "Pointer", "className": "Provider", "objectId": provider},
        "accessLevel": "read", "scope": ["labs"]})
    tmp = tmp_path_factory.mktemp("smart_fetch_keys")
    public, private = _keys(tmp)
    client_id = live_server.cli("clients", "create", "--name", "Bulk EHR", "--jwks", str(public), "--scope",
                                "system/*.rs", "--provider", provider)["client_id"]
    return provider, client_id, private


def _assert_only_alice(found: dict[str, list[dict]], people) -> None:  # noqa: F811
    alice, carol = people["alice"], people["carol"]
    assert [p["id"] for p in found["Patient"]] == alice.profiles
    assert len(found["Observation"]) == 2  # her two labs
    assert {o["subject"]["reference"].split("/")[-1] for o in found["Observation"]} == set(alice.profiles)
    assert set(found) <= {"Patient", "Observation"}  # labs only: nothing else was shared
    text = json.dumps(found)
    assert not any(pid in text for pid in carol.profiles)


def test_smart_fetch_system_export(live_server, people, clinic, tmp_path):  # noqa: F811
    _, client_id, key = clinic
    _smart_fetch(live_server, client_id, key, tmp_path / "system")
    found = _resources(tmp_path / "system")
    _assert_r4(found)
    _assert_only_alice(found, people)


def test_smart_fetch_group_export(live_server, people, clinic, tmp_path):  # noqa: F811
    provider, client_id, key = clinic
    _smart_fetch(live_server, client_id, key, tmp_path / "group", "--group", provider)
    found = _resources(tmp_path / "group")
    _assert_r4(found)
    _assert_only_alice(found, people)
