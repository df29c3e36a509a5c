"""A patient's whole record as NDJSON + the documents' files (issue 7, "Patient export"): the service
(gateway/services/record_export.py), the "download my record" endpoint GET /account/export.zip, and
`phr-gateway export` with its progress bar. Both databases."""
from __future__ import annotations

import io
import zipfile

import orjson
import pytest
from click.testing import CliRunner

from gateway import cli
from gateway.services.record_export import safe_name
from tests.bulk.conftest import assert_valid_lines
from tests.fhir.conftest import load_record

DOC_BYTES = b"HbA1c 6.1 %\n"  # what tests/native/conftest.py's upload() stores


def _ndjson(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def _zip(r) -> zipfile.ZipFile:
    assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:2000])
    assert r.mimetype == "application/zip"
    assert "attachment" in r.headers["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(r.get_data()))


@pytest.fixture
def alice_with_document(alice, make_document):
    doc_id, _ = make_document(alice.parse, alice.patient_id, title="Annual panel")
    return alice, doc_id


def test_download_my_record(alice_with_document, bob, client):
    alice, doc_id = alice_with_document
    zf = _zip(client.get("/account/export.zip", headers={"X-Parse-Session-Token": alice.parse.token}))
    names = set(zf.namelist())
    assert "README.txt" in names and "Binary.ndjson" not in names
    for rt, ids in alice.record.items():
        lines = _ndjson(zf.read(f"{rt}.ndjson"))
        assert sorted(r["id"] for r in lines) == sorted(ids), rt
        assert_valid_lines(lines)
    [doc] = _ndjson(zf.read("DocumentReference.ndjson"))
    assert doc["id"] == doc_id
    [doc_file] = [n for n in names if n.startswith("documents/")]
    assert doc_file.startswith(f"documents/{doc_id}-") and zf.read(doc_file) == DOC_BYTES
    everything = b"".join(zf.read(n) for n in names)
    assert bob.patient_id.encode() not in everything
    readme = zf.read("README.txt").decode()
    assert alice.patient_id in readme and "documents/" in readme


def test_the_session_cookie_works_for_a_plain_link(alice, client):
    client.set_cookie("phr_session_token", alice.parse.token)
    r = client.get("/account/export.zip")
    assert "Patient.ndjson" in _zip(r).namelist()
    # a file response on the pages' origin: downloaded, never sniffed, sandboxed (issue 21)
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize("headers", [{}, {"X-Parse-Session-Token": "r:not-a-session"}])
def test_without_a_valid_session_is_401(client, headers):
    r = client.get("/account/export.zip", headers=headers)
    assert r.status_code == 401 and r.json["code"] == 209


def test_one_profile_of_a_caregiver_and_never_someone_elses(person, bob, client):
    carol = person("carol")
    load_record(carol, family="Smith", given="Carol", seed=3)
    carol_id = carol.patient_id
    load_record(carol, family="Smith", given="Danny", seed=4)
    danny_id = carol.patient_id
    h = {"X-Parse-Session-Token": carol.parse.token}
    both = _ndjson(_zip(client.get("/account/export.zip", headers=h)).read("Patient.ndjson"))
    assert sorted(p["id"] for p in both) == sorted([carol_id, danny_id])
    one = _ndjson(_zip(client.get(f"/account/export.zip?profile={danny_id}", headers=h)).read("Patient.ndjson"))
    assert [p["id"] for p in one] == [danny_id]
    r = client.get(f"/account/export.zip?profile={bob.patient_id}", headers=h)
    assert r.status_code == 404 and r.json["code"] == 101


def test_a_grantee_exports_only_their_own_profiles(alice, person, share, client):
    """Sharing lets Dave read Alice's allergies; it does not make them Dave's record."""
    dave = person("dave")
    load_record(dave, family="Jones", given="Dave", seed=5)
    share(alice.parse, alice.patient_id, dave.user_id, scope=["allergies"])
    zf = _zip(client.get("/account/export.zip", headers={"X-Parse-Session-Token": dave.parse.token}))
    assert alice.patient_id.encode() not in b"".join(zf.read(n) for n in zf.namelist())


def test_export_is_audited(alice, client, audit_count):
    before = audit_count(action="export")
    _zip(client.get("/account/export.zip", headers={"X-Parse-Session-Token": alice.parse.token}))
    assert audit_count(action="export") == before + 1


@pytest.mark.parametrize("original, expected", [
    ("scan.pdf", "documents/abc-scan.pdf"),
    ("../../etc/passwd", "documents/abc-passwd"),
    ("C:\\Users\\me\\x-ray 1.png", "documents/abc-x-ray_1.png"),
    (".hidden", "documents/abc-hidden"),
    ("", "documents/abc-file"),
    (None, "documents/abc-file"),
])
def test_document_names_are_safe(original, expected):
    assert safe_name("abc", original) == expected


# ---- phr-gateway export ----

@pytest.fixture
def run_cli(app, monkeypatch):
    """`phr-gateway ARGS` in-process, against the test's own database connection."""
    monkeypatch.setattr(cli, "_app", lambda: app)

    def invoke(*args: str):
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    return invoke


def _last_json(result) -> dict:
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return orjson.loads([line for line in result.stdout.splitlines() if line.strip()][-1])


def test_cli_export_to_a_folder(alice_with_document, run_cli, tmp_path):
    alice, doc_id = alice_with_document
    r = run_cli("export", "--username", "alice", "--output", str(tmp_path / "out"))
    summary = _last_json(r)
    assert "Exporting alice's record" in r.stderr  # the progress bar
    out = tmp_path / "out"
    assert summary["path"] == str(out.resolve())
    n = sum(len(ids) for ids in alice.record.values()) + 1  # + the DocumentReference
    lines = {p.stem: _ndjson(p.read_bytes()) for p in out.glob("*.ndjson")}
    assert summary["resources"] == sum(len(v) for v in lines.values()) >= n
    assert summary["documents"] == 1
    assert summary["files"] == len(list(out.rglob("*.*")))  # NDJSON files + documents + README
    assert sorted(r["id"] for r in lines["Observation"]) == sorted(alice.record["Observation"])
    [doc_file] = list((out / "documents").iterdir())
    assert doc_file.name.startswith(doc_id) and doc_file.read_bytes() == DOC_BYTES
    assert (out / "README.txt").exists()
    for rs in lines.values():
        assert_valid_lines(rs)


def test_cli_export_to_a_zip_and_one_profile(person, run_cli, tmp_path):
    carol = person("carol")
    load_record(carol, family="Smith", given="Carol", seed=3)
    load_record(carol, family="Smith", given="Danny", seed=4)
    danny = carol.patient_id
    r = run_cli("export", "--username", "carol", "--profile", danny, "--output", str(tmp_path / "danny.zip"))
    summary = _last_json(r)
    zf = zipfile.ZipFile(tmp_path / "danny.zip")
    assert [p["id"] for p in _ndjson(zf.read("Patient.ndjson"))] == [danny]
    assert summary["resources"] == sum(len(_ndjson(zf.read(n))) for n in zf.namelist() if n.endswith(".ndjson"))
    assert summary["files"] == len(zf.namelist())


@pytest.mark.parametrize("args, message", [
    (("--username", "nobody"), "no user"),
    (("--username", "alice", "--profile", "XXXXXXXXXX"), "not one of"),
])
def test_cli_export_errors(alice, run_cli, tmp_path, args, message):
    r = CliRunner().invoke(cli.main, ["export", *args, "--output", str(tmp_path / "x")])
    assert r.exit_code != 0 and message in r.stderr and not r.stdout.strip()
