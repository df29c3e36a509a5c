"""CORS for browsers: the OPTIONS preflight and the headers on every answer, as the reference Parse Server
sends them (transcript meta.cors_headers, rest[] OPTIONS /classes/Allergy)."""
import json

import pytest

from tests.native.conftest import PARSE_TRANSCRIPT, ok

TRANSCRIPT = PARSE_TRANSCRIPT
RECORDED = {k: v for k, v in json.loads(TRANSCRIPT.read_text())["meta"]["cors_headers"].items()
            if k.startswith("access-control-")}

PREFLIGHT = {"Origin": "http://example.test", "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "X-Parse-Application-Id, X-Parse-Session-Token, Content-Type"}


def header_set(value: str) -> set[str]:
    return {h.strip().lower() for h in value.split(",")}


def assert_cors(headers) -> None:
    """Parse Server's CORS headers; we allow X-Parse-Installation-Id besides (REST clients send it)."""
    for name, value in RECORDED.items():
        if name == "access-control-allow-headers":
            assert header_set(headers.get(name, "")) >= header_set(value)
        else:
            assert headers.get(name) == value, name


@pytest.mark.parametrize("path", ["/parse/classes/Allergy", "/parse/login", "/parse/users/me", "/parse/batch",
                                  "/parse/files/a.txt", "/parse/classes/Allergy/abcdefghij", "/parse/nosuchroute"])
def test_preflight_answers_ok_with_cors_headers_and_no_credentials(client, path):
    r = client.open(path, method="OPTIONS", headers=PREFLIGHT)
    assert r.status_code == 200 and r.get_data(as_text=True) == "OK"
    assert_cors(r.headers)


def test_preflight_allows_every_parse_header(client):
    allowed = header_set(client.open("/parse/classes/Allergy", method="OPTIONS", headers=PREFLIGHT)
                         .headers["Access-Control-Allow-Headers"])
    for header in ("x-parse-application-id", "x-parse-session-token", "x-parse-master-key", "content-type",
                   "x-parse-installation-id", "x-parse-rest-api-key", "x-parse-javascript-key",
                   "x-parse-client-version", "x-parse-revocable-session"):
        assert header in allowed


def test_successful_answers_carry_cors_headers(signup):
    _, alice = signup("alice")
    r = alice.get("/classes/Allergy")
    ok(r)
    assert_cors(r.headers)


@pytest.mark.parametrize("method, path", [("GET", "/classes/NoSuchClass"), ("GET", "/users/me"),
                                          ("GET", "/schemas"), ("POST", "/classes/Allergy")])
def test_error_answers_carry_cors_headers(parse, method, path):
    r = parse.request(method, path, {} if method == "POST" else None)
    assert r.status_code >= 400
    assert_cors(r.headers)


def test_unauthorized_keys_answer_carries_cors_headers(parse):
    r = parse.get("/classes/Allergy", headers={"X-Parse-Master-Key": "wrong"})
    assert r.status_code == 403
    assert_cors(r.headers)
