"""Client keys: the application id, REST API key and JavaScript key are checked only when configured
(README, configuration), in the header form and in the SDK's body form; a wrong key answers Parse's
403 {"error": "unauthorized"} (transcript rest[] GET /classes/Profile with bad keys)."""
import orjson
import pytest

from tests.conftest import MASTER_KEY
from tests.native.conftest import ok

UNAUTHORIZED = (403, {"error": "unauthorized"})


def answer(r):
    return r.status_code, r.json


@pytest.fixture
def keyed(configured):
    """An app with every key configured, and a signed-up user's token on it."""
    client = configured(APP_ID="phr", REST_API_KEY="rest-secret", JAVASCRIPT_KEY="js-secret")
    h = {"X-Parse-Application-Id": "phr", "X-Parse-REST-API-Key": "rest-secret"}
    r = client.client.post("/parse/users", json={"username": "alice", "password": "pw"}, headers=h)
    return client.client, ok(r, 201)["sessionToken"]


def hdrs(**kw):
    names = {"app": "X-Parse-Application-Id", "rest": "X-Parse-REST-API-Key", "js": "X-Parse-Javascript-Key",
             "master": "X-Parse-Master-Key", "token": "X-Parse-Session-Token", "client": "X-Parse-Client-Key"}
    return {names[k]: v for k, v in kw.items()}


@pytest.mark.parametrize("headers, expected", [
    (hdrs(app="phr", rest="rest-secret"), 200),
    (hdrs(app="phr", js="js-secret"), 200),
    (hdrs(app="phr", client="js-secret"), 200),
    (hdrs(app="phr", master=MASTER_KEY), 200),             # the master key needs no client key
    (hdrs(rest="rest-secret"), 403),                        # no application id
    (hdrs(app="other", rest="rest-secret"), 403),           # wrong application id
    (hdrs(app="phr"), 403),                                 # no client key
    (hdrs(app="phr", rest="wrong"), 403),
    (hdrs(app="phr", js="rest-secret"), 403),               # a key in the wrong slot
    (hdrs(app="phr", master="wrong"), 403),
    (hdrs(app="other", master=MASTER_KEY), 403),            # the master key does not excuse the app id
])
def test_header_keys(keyed, headers, expected):
    client, token = keyed
    r = client.get("/parse/classes/Allergy", headers={**headers, "X-Parse-Session-Token": token})
    if expected == 200:
        assert ok(r) == {"results": []}
    else:
        assert answer(r) == UNAUTHORIZED


@pytest.mark.parametrize("meta, expected", [
    ({"_ApplicationId": "phr", "_JavaScriptKey": "js-secret"}, 200),
    ({"_ApplicationId": "phr", "_RestAPIKey": "rest-secret"}, 200),
    ({"_ApplicationId": "phr", "_MasterKey": MASTER_KEY}, 200),
    ({"_ApplicationId": "phr"}, 403),
    ({"_ApplicationId": "phr", "_JavaScriptKey": "wrong"}, 403),
    ({"_ApplicationId": "nope", "_JavaScriptKey": "js-secret"}, 403),
    ({"_JavaScriptKey": "js-secret"}, 403),
])
def test_sdk_body_keys(keyed, meta, expected):
    client, token = keyed
    body = {"_method": "GET", "where": {}, "_SessionToken": token, "_ClientVersion": "js8.6.2", **meta}
    r = client.post("/parse/classes/Allergy", data=orjson.dumps(body), content_type="text/plain")
    if expected == 200:
        assert ok(r) == {"results": []}
    else:
        assert answer(r) == UNAUTHORIZED


def test_wrong_keys_write_nothing(keyed, rows):
    client, token = keyed
    before = rows("Profile")
    r = client.post("/parse/classes/Profile", json={"fullName": "x"},
                    headers=hdrs(app="phr", rest="wrong", token=token))
    assert answer(r) == UNAUTHORIZED
    r = client.post("/parse/users", json={"username": "mallory", "password": "pw"}, headers=hdrs(app="nope"))
    assert answer(r) == UNAUTHORIZED
    assert rows("Profile") == before and rows("_User") == 1


def test_without_configured_keys_any_app_id_passes(configured):
    client = configured(APP_ID=None, REST_API_KEY=None, JAVASCRIPT_KEY=None)
    r = client.client.post("/parse/users", json={"username": "a", "password": "pw"}, headers=hdrs(app="anything"))
    assert ok(r, 201)["sessionToken"]
    r = client.client.post("/parse/users", json={"username": "b", "password": "pw"})
    assert ok(r, 201)["sessionToken"]


def test_app_id_alone_when_no_client_keys(configured):
    client = configured(APP_ID="phr", REST_API_KEY=None, JAVASCRIPT_KEY=None)
    ok(client.client.post("/parse/users", json={"username": "a", "password": "pw"}, headers=hdrs(app="phr")), 201)
    r = client.client.post("/parse/users", json={"username": "b", "password": "pw"}, headers=hdrs(app="zzz"))
    assert answer(r) == UNAUTHORIZED


def test_file_downloads_need_no_keys(keyed):
    # A browser's <img src> or link carries no headers; the signed URL is the credential.
    client, token = keyed
    r = client.post("/parse/files/a.txt", data=b"hello", content_type="text/plain",
                    headers=hdrs(app="phr", rest="rest-secret", token=token))
    url = ok(r, 201)["url"]
    got = client.get(url.replace("http://testserver", ""))
    assert got.status_code == 200 and got.data == b"hello"


def test_health_answers_with_keys(keyed):
    client, _ = keyed
    assert ok(client.get("/parse/health", headers=hdrs(app="phr", rest="rest-secret"))) == {"status": "ok"}
    assert answer(client.get("/parse/health", headers=hdrs(app="nope"))) == UNAUTHORIZED
