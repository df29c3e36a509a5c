"""Issue 21 as a user would try it, over HTTP against the real server (gunicorn): an HTML page named .pdf
and an SVG with a script are refused whatever type they claim, and what is stored comes back with nosniff,
the sandboxing CSP and a Content-Disposition, through every layer between the app and the socket."""
from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.e2e

PAGE = b"<html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"><script>alert(1)</script></svg>'
PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
CSP = "default-src 'none'; sandbox"


@pytest.fixture(scope="module")
def eve(live_server):
    keys = {"X-Parse-Application-Id": live_server.app_id, "X-Parse-Javascript-Key": live_server.javascript_key}
    r = requests.post(f"{live_server.parse_url}/users", json={"username": f"eve-{uuid.uuid4().hex[:8]}",
                                                               "password": "pw-123456"}, headers=keys, timeout=10)
    assert r.status_code == 201, r.text
    return live_server.parse_url, {**keys, "X-Parse-Session-Token": r.json()["sessionToken"]}


def upload(eve, name: str, data: bytes, content_type: str | None) -> requests.Response:
    base, headers = eve
    extra = {"Content-Type": content_type} if content_type else {}
    return requests.post(f"{base}/files/{name}", data=data, headers={**headers, **extra}, timeout=10)


@pytest.mark.parametrize("name, data, content_type", [
    ("results.pdf", PAGE, "application/pdf"),
    ("results.pdf", PAGE, None),
    ("results.pdf", PAGE, "text/html"),
    ("chart.png", SVG, "image/png"),
    ("chart.png", SVG, "image/svg+xml"),
    ("chart.txt", SVG, "text/plain"),
])
def test_a_page_or_a_scripted_svg_is_refused_under_any_name_and_type(eve, name, data, content_type):
    r = upload(eve, name, data, content_type)
    assert r.status_code == 400 and r.json()["code"] == 130, r.text


@pytest.mark.parametrize("name, data, content_type, served, disposition", [
    ("letter.pdf", PDF, "application/pdf", "application/pdf", "inline"),
    ("note.txt", b"HbA1c 6.1 %\n", "Text/Plain; charset=UTF-8", "text/plain; charset=utf-8", "attachment"),
])
def test_what_is_stored_comes_back_with_the_safe_headers(eve, name, data, content_type, served, disposition):
    r = upload(eve, name, data, content_type)
    assert r.status_code == 201, r.text
    got = requests.get(r.json()["url"], timeout=10)  # the signed URL alone, as a link in a page would use it
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == served
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == CSP
    assert got.headers["Content-Disposition"] == f'{disposition}; filename="{name}"'
