"""`phr-gateway clients create` (DESIGN.md): the JSON object on the last stdout line, secrets only with
--secret, keys with --jwks / --jwks-url, errors on stderr with a non-zero exit."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.smart.conftest import make_key


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key in ("DATABASE_URL", "PHR_BASE_URL", "PHR_MASTER_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PHR_INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result


def last_json(result) -> dict:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_public_secret_and_jwks_clients(env):
    public = run("clients", "create", "--name", "Patient app", "--public", "--redirect-uri", "https://a.example/cb",
                 "--redirect-uri", "https://a.example/cb2")
    assert public.exit_code == 0, public.output
    out = last_json(public)
    assert out["client_id"] and "client_secret" not in out
    secret = run("clients", "create", "--name", "Clinic app", "--secret", "--redirect-uri", "https://c.example/cb",
                 "--scope", "openid fhirUser user/*.rs")
    assert secret.exit_code == 0, secret.output
    assert last_json(secret)["client_secret"]
    jwks = env / "jwks.json"
    jwks.write_text(json.dumps({"keys": [make_key("RS384").public_jwk]}))
    backend = run("clients", "create", "--name", "EHR", "--jwks", str(jwks), "--scope", "system/*.rs")
    assert backend.exit_code == 0, backend.output
    assert "client_secret" not in last_json(backend)
    url = run("clients", "create", "--name", "EHR 2", "--jwks-url", "https://ehr.example/jwks.json")
    assert url.exit_code == 0, url.output


@pytest.mark.parametrize("args", [
    ["--name", "x", "--scope", "patient/Observation.bogus"],
    ["--name", "x", "--redirect-uri", "not-a-url"],
    ["--name", "x", "--provider", "nosuchprov"],
    ["--name", "x", "--secret", "--jwks-url", "https://ehr.example/jwks.json"],
])
def test_errors_go_to_stderr(env, tmp_path, args):
    result = run("clients", "create", *args)
    assert result.exit_code != 0
    assert "error:" in result.stderr and not result.stdout.strip()


def test_private_keys_are_refused(env):
    from joserfc.jwk import RSAKey

    jwks = env / "private.json"
    key = RSAKey.generate_key(2048, private=True).as_dict(private=True)
    key["kid"] = "k1"
    jwks.write_text(json.dumps({"keys": [key]}))
    result = run("clients", "create", "--name", "x", "--jwks", str(jwks))
    assert result.exit_code != 0 and "private" in result.stderr


def test_keys_rotate(env):
    first = run("keys", "rotate")
    second = run("keys", "rotate")
    assert first.exit_code == 0 and last_json(first)["kid"] != last_json(second)["kid"]


def test_client_ids_are_letters_and_digits_so_command_lines_take_them():
    """A client id that began with '-' (one token_urlsafe id in 64) was read as an option by smart-fetch."""
    from gateway.smart.clients import new_client_id

    ids = {new_client_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 24 and i.isascii() and i.isalnum() for i in ids)
