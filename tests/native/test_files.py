"""Files: upload (raw body, and the JS SDK's base64 JSON form) -> {url, name}; download only for a caller
who may see the document that uses the file (session token or a signed URL that expires); dangerous
extensions and names refused (transcript rest[] POST /files/..., sdk[] id 21 'Parse.File save')."""
import base64
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from gateway.models import StoredFile
from tests.conftest import APP_ID, pointer
from tests.native.conftest import ok, parse_error


def path_of(url: str) -> str:
    """The test client's path (+ query) for an absolute file URL."""
    parts = urlsplit(url)
    assert url.startswith("http://testserver/parse/files/")
    return parts.path + ("?" + parts.query if parts.query else "")


def download(client, url: str, token: str | None = None):
    headers = {"X-Parse-Session-Token": token} if token else {}
    return client.get(path_of(url), headers=headers)


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("alice")
    return client, make_profile(client)


def test_raw_upload_answers_url_and_name(alice, upload):
    client, _ = alice
    body = upload(client, "report.txt", b"hello allergy report\n")
    assert set(body) == {"url", "name"}
    assert body["name"].endswith("_report.txt") and len(body["name"]) > len("report.txt") + 8
    assert body["url"].startswith(f"http://testserver/parse/files/{APP_ID}/{body['name']}?")


def test_sdk_base64_form(alice, client):
    c, _ = alice
    envelope = {"base64": base64.b64encode(b"sdk file body\n").decode(), "fileData": {"metadata": {}, "tags": {}},
                "_ContentType": "text/plain", "_ApplicationId": APP_ID, "_SessionToken": c.token,
                "_ClientVersion": "js8.6.2"}
    r = client.post("/parse/files/sdk-note.txt", data=orjson.dumps(envelope), content_type="text/plain")
    body = ok(r, 201)
    assert body["name"].endswith("_sdk-note.txt")
    got = download(client, body["url"], c.token)
    assert got.status_code == 200 and got.data == b"sdk file body\n"


def test_bad_base64_is_refused(alice, client, rows):
    c, _ = alice
    envelope = {"base64": "%%%not base64%%%", "_ApplicationId": APP_ID, "_SessionToken": c.token}
    r = client.post("/parse/files/x.txt", data=orjson.dumps(envelope), content_type="text/plain")
    parse_error(r, 130)
    assert rows(StoredFile) == 0


def test_uploader_downloads_before_attaching_and_others_do_not(alice, upload, client, signup):
    c, _ = alice
    stored = upload(c, "photo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    r = download(client, stored["url"], c.token)
    assert r.status_code == 200 and r.data == b"\x89PNG\r\n\x1a\n" and r.mimetype == "image/png"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    _, bob = signup("bob")
    bare = stored["url"].split("?")[0]
    parse_error(download(client, bare, bob.token), 101, 404)


def test_document_file_url_downloads_with_session_or_signature(alice, make_document, client):
    c, pid = alice
    doc, name = make_document(c, pid)
    got = ok(c.get(f"/classes/MedicalDocument/{doc}"))
    assert got["file"]["__type"] == "File" and got["file"]["name"] == name
    url = got["file"]["url"]
    # the signed URL alone (as an <img src> or a download link would use it)
    r = client.get(path_of(url))
    assert r.status_code == 200 and r.data == b"HbA1c 6.1 %\n"
    # the bare URL with a session token
    r = download(client, url.split("?")[0], c.token)
    assert r.status_code == 200
    # the bare URL without anything
    parse_error(client.get(path_of(url.split("?")[0])), 101, 404)


def test_another_user_is_refused_even_with_the_owners_url(alice, make_document, signup, client):
    c, pid = alice
    doc, name = make_document(c, pid)
    url = ok(c.get(f"/classes/MedicalDocument/{doc}"))["file"]["url"]
    _, bob = signup("bob")
    # Bob's session is who he is: the signature made for alice does not lend him her rights.
    parse_error(download(client, url, bob.token), 101, 404)
    parse_error(download(client, url.split("?")[0], bob.token), 101, 404)


def test_expired_signature_is_refused(alice, make_document, configured):
    c, pid = alice
    expired = configured(FILE_URL_TTL_SECONDS=-10)
    doc, _ = make_document(c, pid)
    url = ok(expired.as_user(c.token).get(f"/classes/MedicalDocument/{doc}"))["file"]["url"]
    parse_error(expired.client.get(path_of(url)), 101, 404)


@pytest.mark.parametrize("tamper", ["sig", "exp", "uid", "drop-sig"])
def test_tampered_signature_is_refused(alice, make_document, client, signup, tamper):
    c, pid = alice
    bob_id, _ = signup("bob")
    doc, name = make_document(c, pid)
    url = ok(c.get(f"/classes/MedicalDocument/{doc}"))["file"]["url"]
    base, query = url.split("?")
    args = {k: v[0] for k, v in parse_qs(query).items()}
    if tamper == "sig":
        args["sig"] = ("0" if args["sig"][0] != "0" else "1") + args["sig"][1:]
    elif tamper == "exp":
        args["exp"] = str(int(args["exp"]) + 3600)
    elif tamper == "uid":
        args["uid"] = bob_id
    else:
        del args["sig"]
    tampered = base + "?" + "&".join(f"{k}={v}" for k, v in args.items())
    parse_error(client.get(path_of(tampered)), 101, 404)
    assert client.get(path_of(url)).status_code == 200  # the genuine URL still works


def test_signature_for_one_file_does_not_open_another(alice, make_document, client):
    c, pid = alice
    d1, n1 = make_document(c, pid)
    d2, n2 = make_document(c, pid)
    url1 = ok(c.get(f"/classes/MedicalDocument/{d1}"))["file"]["url"]
    query = url1.split("?")[1]
    parse_error(client.get(f"/parse/files/{APP_ID}/{n2}?{query}"), 101, 404)


def test_grantee_downloads_until_the_grant_is_revoked(alice, make_document, provider_user, share, client):
    c, pid = alice
    doc, _ = make_document(c, pid)
    dr_id, _, dr = provider_user()
    grant = share(c, pid, dr_id, scope=["documents"])
    url = ok(dr.get(f"/classes/MedicalDocument/{doc}"))["file"]["url"]
    assert client.get(path_of(url)).status_code == 200
    assert download(client, url.split("?")[0], dr.token).status_code == 200
    ok(c.put(f"/classes/SharedAccess/{grant}", {"revokedAt": {"__type": "Date", "iso": "2020-01-01T00:00:00Z"}}))
    parse_error(client.get(path_of(url)), 101, 404)
    parse_error(download(client, url.split("?")[0], dr.token), 101, 404)


def test_grant_without_documents_scope_does_not_open_files(alice, make_document, provider_user, share, client):
    c, pid = alice
    doc, name = make_document(c, pid)
    dr_id, _, dr = provider_user()
    share(c, pid, dr_id, scope=["allergies"])
    parse_error(download(client, f"http://testserver/parse/files/{APP_ID}/{name}", dr.token), 101, 404)


def test_deleted_document_closes_its_file(alice, make_document, client, signup, share):
    c, pid = alice
    bob_id, bob = signup("bob")
    share(c, pid, bob_id, scope=["documents"])
    doc, name = make_document(c, pid)
    url = ok(bob.get(f"/classes/MedicalDocument/{doc}"))["file"]["url"]
    ok(c.delete(f"/classes/MedicalDocument/{doc}"))
    parse_error(client.get(path_of(url)), 101, 404)


def test_a_new_file_is_a_new_version_and_the_old_file_stays(alice, make_document, upload, client):
    c, pid = alice
    doc, old_name = make_document(c, pid)
    new = upload(c, "v2.txt", b"second version")
    body = ok(c.put(f"/classes/MedicalDocument/{doc}", {"file": {"__type": "File", "name": new["name"]}}))
    assert "updatedAt" in body
    got = ok(c.get(f"/classes/MedicalDocument/{doc}"))
    assert got["version"] == 2 and got["file"]["name"] == new["name"]
    old = download(client, f"http://testserver/parse/files/{APP_ID}/{old_name}", c.token)
    assert old.status_code == 200 and old.data == b"HbA1c 6.1 %\n"


def test_someone_elses_upload_cannot_be_attached(alice, upload, signup, make_profile):
    c, pid = alice
    _, bob = signup("bob")
    bobs = upload(bob, "b.txt", b"bob's")
    r = c.post("/classes/MedicalDocument", {"profile": pointer("Profile", pid), "documentType": "x", "title": "t",
                                            "file": {"__type": "File", "name": bobs["name"]}})
    parse_error(r, 119)


def test_unknown_file_is_404(client, alice):
    c, _ = alice
    parse_error(download(client, f"http://testserver/parse/files/{APP_ID}/nonexistent.txt", c.token), 101, 404)


@pytest.mark.parametrize("name", ["evil.html", "evil.HTM", "x.svg", "run.js", "setup.exe", "a.php", "s.sh",
                                  "page.xhtml", "doc.xml"])
def test_dangerous_extensions_are_refused(alice, upload, client, rows, name):
    c, _ = alice
    r = client.post(f"/parse/files/{name}", data=b"<script>1</script>", headers=c.headers(), content_type="text/plain")
    parse_error(r, 130)
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("content_type", ["text/html", "image/svg+xml", "application/javascript",
                                          "application/xhtml+xml"])
def test_active_content_types_are_refused(alice, client, rows, content_type):
    c, _ = alice
    r = client.post("/parse/files/innocent.txt", data=b"<script>1</script>", headers=c.headers(),
                    content_type=content_type)
    parse_error(r, 130)
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("name", ["bad name!.txt", ".hidden", "-dash.txt", "a%2Fb.txt", "x" * 200 + ".txt",
                                  "semi;colon.txt", "quote\".txt"])
def test_invalid_names_are_refused(alice, client, rows, name):
    c, _ = alice
    r = client.post(f"/parse/files/{name}", data=b"x", headers=c.headers(), content_type="text/plain")
    assert r.status_code in (400, 404) and r.is_json and r.json["code"] in (122, 119), r.get_data(as_text=True)
    assert rows(StoredFile) == 0


def test_names_are_made_unique_and_safe(alice, upload):
    c, _ = alice
    a = upload(c, "my report.txt")
    b = upload(c, "my report.txt")
    assert a["name"] != b["name"]
    assert " " not in a["name"] and a["name"].endswith("_my_report.txt")


def test_anonymous_upload_is_refused(parse, client, rows):
    r = client.post("/parse/files/report.txt", data=b"public upload\n", headers=parse.headers(),
                    content_type="text/plain")
    parse_error(r, 130)  # transcript: File upload by public is disabled.
    assert rows(StoredFile) == 0


def test_delete_file_needs_master(alice, upload, client, master):
    c, _ = alice
    stored = upload(c)
    r = c.delete(f"/files/{stored['name']}")
    assert r.status_code == 403 and r.json == {"error": "unauthorized: master key is required"}
    ok(master.delete(f"/files/{stored['name']}"))
    parse_error(download(client, stored["url"], c.token), 101, 404)


def test_upload_size_is_limited(alice, configured, rows):
    c, _ = alice
    small = configured(MAX_CONTENT_LENGTH=1024)
    r = small.client.post("/parse/files/big.bin", data=b"x" * 4096, headers=c.headers(),
                          content_type="application/octet-stream")
    assert r.status_code == 413 and r.json["code"] in (116, 130)
    assert rows(StoredFile) == 0
