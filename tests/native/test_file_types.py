"""What /parse/files accepts and how it serves it (issue 21, stored XSS): the client's type normalised (case,
parameters, whitespace) and checked against the allow-list (gateway/services/file_types.csv) whatever the
name says; the first bytes looked at, so markup is refused under any type and an image or PDF must be one;
and every download sent with nosniff, a sandboxing CSP and a Content-Disposition, files stored before these
rules included."""
from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from gateway.db import utcnow
from gateway.models import FileBlob, StoredFile
from tests.conftest import APP_ID
from tests.native.conftest import ok, parse_error

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00;"
WAV = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
CSP = "default-src 'none'; sandbox"


@pytest.fixture
def alice(signup):
    return signup("alice")[1]


def post_file(c, name: str, data: bytes, content_type: str | None):
    """A raw upload; content_type None sends no Content-Type header at all."""
    headers = c.headers() if content_type is None else c.headers({"Content-Type": content_type})
    return c.client.post(f"/parse/files/{name}", data=data, headers=headers)


def stored_type(db_session, name: str) -> str:
    db_session.expire_all()
    return db_session.get(StoredFile, name).content_type


def download(c, name: str):
    return c.client.get(f"/parse/files/{APP_ID}/{name}", headers=c.headers())


# ---- the type: normalised, then on the allow-list or refused ----------------------------------------------


@pytest.mark.parametrize("content_type", [
    "Text/HTML", "text/html ;charset=utf-8", "IMAGE/SVG+XML", "Application/XHTML+XML", "text/xml",
    "application/xml", "text/xsl", "text / html", "text/javascript", "application/x-sh", "application/zip",
    "multipart/form-data; boundary=x", "html",
])
def test_types_off_the_allow_list_are_refused_in_any_spelling(alice, rows, content_type):
    # Harmless bytes and a harmless name: the type alone is refused.
    r = post_file(alice, "notes.txt", b"just a note\n", content_type)
    assert "is disabled" in parse_error(r, 130)["error"]
    assert rows(StoredFile) == 0


def test_an_html_file_named_pdf_is_refused_whatever_it_claims(alice, rows):
    page = b"<html><body><script>alert(document.cookie)</script></body></html>"
    for content_type in ("text/html", "application/pdf", None, "application/octet-stream"):
        parse_error(post_file(alice, "results.pdf", page, content_type), 130)
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("given, data, expected", [
    ("TEXT/PLAIN; charset=UTF-8", b"HbA1c 6.1 %\n", "text/plain"),
    ('text/plain ; charset="us-ascii"', b"HbA1c 6.1 %\n", "text/plain"),
    ("text/plain;charset=ISO-8859-1", "Caf\u00e9 au lait allergy\n".encode("latin-1"), "text/plain; charset=iso-8859-1"),
    (" text/csv ", b"date,glucose\n2025-09-20,98\n", "text/csv"),
    ("Application/PDF", PDF, "application/pdf"),
    ("image/jpg", JPEG, "image/jpeg"),
    ("Image/PNG", PNG, "image/png"),
    ("application/fhir+json; fhirVersion=4.0", b'{"resourceType": "Patient"}', "application/fhir+json"),
    ("application/json; charset=utf-8", b'{"steps": 9000}', "application/json"),
    ("audio/x-wav", WAV, "audio/wav"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04docx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
])
def test_allowed_types_are_stored_normalised(alice, db_session, given, data, expected):
    body = ok(post_file(alice, "upload.bin", data, given), 201)
    assert stored_type(db_session, body["name"]) == expected
    got = download(alice, body["name"])
    assert got.status_code == 200 and got.data == data


@pytest.mark.parametrize("charset", ["utf-7", "UTF-16", "utf-32", "x-bogus"])
def test_charsets_other_than_ascii_compatible_ones_are_refused(alice, rows, charset):
    r = post_file(alice, "note.txt", b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-", f"text/plain; charset={charset}")
    assert charset in parse_error(r, 130)["error"]
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("name, given, data, expected", [
    ("scan.pdf", None, PDF, "application/pdf"),
    ("note.txt", None, b"feeling better\n", "text/plain"),
    ("photo.PNG", "application/octet-stream", PNG, "image/png"),
    ("photo.jpg", "application/x-www-form-urlencoded", JPEG, "image/jpeg"),  # curl --data-binary's default
    ("readings.unknown", None, b"\x00\x01\x02", "application/octet-stream"),
    ("readings", "application/octet-stream", b"\x00\x01\x02", "application/octet-stream"),
    ("export.json", "binary/octet-stream", b"[]", "application/json"),
])
def test_without_a_type_the_name_decides(alice, db_session, name, given, data, expected):
    body = ok(post_file(alice, name, data, given), 201)
    assert stored_type(db_session, body["name"]) == expected


@pytest.mark.parametrize("name", ["page.html", "x.svg", "style.xsl", "doc.xml", "archive.mhtml"])
def test_a_dangerous_name_without_a_type_is_refused(alice, rows, name):
    parse_error(post_file(alice, name, b"plain words", None), 130)
    assert rows(StoredFile) == 0


# ---- the content: the first bytes --------------------------------------------------------------------------

MARKUP = [
    b"<html><script>alert(1)</script></html>",
    b"<!DOCTYPE html><p>hi",
    b"  \r\n\t<HTML>",
    b"\xef\xbb\xbf<html>",
    b"\xef\xbb\xbf \n\xef\xbb\xbf<svg/onload=alert(1)>",
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"<script>alert(1)</script>",
    b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml">alert(1)</x:script>',
    b"<!-- a comment --><b>",
    b"\xff\xfe" + "<html><script>alert(1)</script>".encode("utf-16-le"),
    b"\xfe\xff" + "  <svg onload=alert(1)>".encode("utf-16-be"),
    b"\x00\x00<iframe src=//evil>",
    b"Visit summary\nall fine\n<script>alert(1)</script>\n",  # markup further on in the header
]


@pytest.mark.parametrize("data", MARKUP, ids=range(len(MARKUP)))
def test_markup_is_refused_under_any_allowed_type(alice, rows, data):
    for content_type in ("text/plain", "text/csv", "application/json", "application/octet-stream",
                         "application/dicom", None):
        r = post_file(alice, "note.txt", data, content_type)
        assert "markup" in parse_error(r, 130)["error"], content_type
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("content_type, data", [
    ("image/png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"),
    ("image/jpeg", b"<html><img src=x onerror=alert(1)>"),
    ("application/pdf", b"<html><script>alert(1)</script>"),
    ("application/pdf", b" %PDF-1.4 but not at the start"),
    ("image/gif", PNG),
    ("image/webp", b"RIFF\x00\x00\x00\x00WAVE"),
])
def test_a_pdf_or_image_must_carry_its_signature(alice, rows, content_type, data):
    r = post_file(alice, "scan.bin", data, content_type)
    assert f"not {content_type}" in parse_error(r, 130)["error"]
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("content_type, data", [
    ("image/gif", GIF[:6] + b"<script>alert(1)</script>" + GIF[6:]),  # a GIF whose header hides a page
    ("image/jpeg", JPEG + b"<html><body onload=alert(1)>"),
    ("application/pdf", b"%PDF-1.4\n<svg onload=alert(1)>"),
])
def test_polyglots_with_markup_in_the_header_are_refused(alice, rows, content_type, data):
    parse_error(post_file(alice, "scan.bin", data, content_type), 130)
    assert rows(StoredFile) == 0


@pytest.mark.parametrize("content_type, data", [
    ("text/plain", b"glucose <5.6 mmol/L\n<3 thanks, doctor\n"),
    ("text/csv", b"test,value\nLDL,< 100\n"),
    ("application/fhir+json", orjson.dumps({"resourceType": "Patient", "text": {
        "status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>Lee</b></p></div>'}})),
    ("application/octet-stream", b"\x00\x01<\x02>"),
])
def test_text_that_only_mentions_angle_brackets_is_kept(alice, content_type, data):
    body = ok(post_file(alice, "data.bin", data, content_type), 201)
    assert download(alice, body["name"]).data == data


def test_the_sdk_base64_form_is_checked_the_same_way(alice, client, rows):
    def sdk(content_type: str, data: bytes):
        envelope = {"base64": base64.b64encode(data).decode(), "_ContentType": content_type,
                    "_ApplicationId": APP_ID, "_SessionToken": alice.token}
        return client.post("/parse/files/sdk.txt", data=orjson.dumps(envelope), content_type="text/plain")

    parse_error(sdk("Text/HTML", b"plain"), 130)
    parse_error(sdk("text/plain", b"<html><script>alert(1)</script>"), 130)
    assert rows(StoredFile) == 0
    ok(sdk("TEXT/PLAIN", b"a note"), 201)


# ---- downloads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type, data, served, disposition", [
    ("application/pdf", PDF, "application/pdf", "inline"),
    ("image/png", PNG, "image/png", "inline"),
    ("image/gif", GIF, "image/gif", "inline"),
    ("text/plain", b"a note\n", "text/plain; charset=utf-8", "attachment"),
    ("text/plain; charset=iso-8859-1", b"caf\xe9", "text/plain; charset=iso-8859-1", "attachment"),
    ("text/csv", b"a,b\n", "text/csv; charset=utf-8", "attachment"),
    ("application/json", b"{}", "application/json", "attachment"),
    ("audio/wav", WAV, "audio/wav", "attachment"),
    ("application/octet-stream", b"\x00\x01", "application/octet-stream", "attachment"),
])
def test_every_download_says_nosniff_csp_and_how_to_show_it(alice, content_type, data, served, disposition):
    body = ok(post_file(alice, "my_file.dat", data, content_type), 201)
    r = download(alice, body["name"])
    assert r.status_code == 200 and r.data == data
    assert r.headers["Content-Type"] == served
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["Content-Disposition"] == f'{disposition}; filename="my_file.dat"'


def legacy_file(db_session, owner_id: str, name: str, content_type: str, data: bytes) -> None:
    """A file as an earlier version stored it, before the allow-list (straight into the tables)."""
    db_session.add(StoredFile(
        name=name, original_name=name.split("_", 1)[1], content_type=content_type, size=len(data),
        sha1_b64=base64.b64encode(hashlib.sha1(data).digest()).decode(), sha256_hex=hashlib.sha256(data).hexdigest(),
        created_by_id=owner_id, created_at=utcnow()))
    db_session.flush()  # the blob's foreign key needs the file's row first
    db_session.add(FileBlob(name=name, data=data))
    db_session.commit()


@pytest.mark.parametrize("content_type, data", [
    ("text/html", b"<html><script>alert(document.cookie)</script></html>"),
    ("Text/HTML", b"<script>alert(1)</script>"),
    ("text/html ;charset=utf-8", b"<b>hi</b>"),
    ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("application/xhtml+xml", b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>'),
    ("text/xml", b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>'),
    ("image/png", b"<html><script>alert(1)</script>"),  # an image claim that was a page
    ("text/plain", b"<html><script>alert(1)</script>"),
    ("text/plain; charset=utf-7", b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-"),
])
def test_files_stored_before_the_rules_are_only_ever_downloaded(signup, db_session, content_type, data):
    uid, alice = signup("alice")
    legacy_file(db_session, uid, "0123456789abcdef_old.dat", content_type, data)
    r = download(alice, "0123456789abcdef_old.dat")
    assert r.status_code == 200 and r.data == data  # the bytes stay the owner's, unchanged
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == 'attachment; filename="old.dat"'
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Content-Security-Policy"] == CSP
    assert stored_type(db_session, "0123456789abcdef_old.dat") == content_type  # the record is not rewritten
