"""The JS SDK's request form: every call is a POST with Content-Type text/plain and a JSON body that carries
`_method`, `_ApplicationId`, `_JavaScriptKey`, `_SessionToken`, `_MasterKey`, `_InstallationId`,
`_ClientVersion` (and `_ContentType` for files). The envelopes are taken from the real Parse SDK's requests
recorded in the reference transcript (sdk[]), with our keys, tokens and PHR field names put in."""
import json

import orjson
import pytest

from tests.conftest import APP_ID, MASTER_KEY, pointer
from tests.native.conftest import PARSE_TRANSCRIPT, VALID, ok, parse_error

TRANSCRIPT = PARSE_TRANSCRIPT


def _steps() -> dict[str, dict]:
    data = json.loads(TRANSCRIPT.read_text())
    out: dict[str, dict] = {}
    for entry in data["sdk"]:
        out.setdefault(entry["step"], entry)
    return out


STEPS = _steps()


def envelope(step: str, token: str | None = None, master: bool = False) -> dict:
    """The SDK meta keys of a recorded step, with our application id and credentials."""
    recorded = STEPS[step]["request_body"]
    env = {k: v for k, v in recorded.items() if k.startswith("_")}
    env["_ApplicationId"] = APP_ID
    env.pop("_SessionToken", None)
    env.pop("_MasterKey", None)
    if token:
        env["_SessionToken"] = token
    if master:
        env["_MasterKey"] = MASTER_KEY
    return env


def sdk(client, step: str, path: str | None = None, body: dict | None = None, token: str | None = None,
        master: bool = False):
    """Replay a recorded SDK step (its path unless given) with our body: POST, text/plain."""
    entry = STEPS[step]
    data = {**(body or {}), **envelope(step, token, master)}
    return client.post(path or entry["url_path"], data=orjson.dumps(data), content_type="text/plain")


def recorded_status(step: str) -> int:
    return STEPS[step]["status"]


@pytest.fixture
def alice(client):
    r = sdk(client, "signUp alice", body={"username": "alice", "password": "pw-A-1", "email": "alice@example.org"})
    body = ok(r, recorded_status("signUp alice"))
    assert set(body) == set(STEPS["signUp alice"]["response_body"])  # objectId, createdAt, sessionToken
    return body


def test_signup_and_login(client, alice):
    r = sdk(client, "logIn alice", body={"username": "alice", "password": "pw-A-1"})
    body = ok(r, recorded_status("logIn alice"))
    assert set(STEPS["logIn alice"]["response_body"]) <= set(body)  # plus our `role`
    assert body["objectId"] == alice["objectId"] and body["sessionToken"].startswith("r:")
    assert "password" not in body


def test_login_wrong_password(client, alice):
    r = sdk(client, "logIn wrong password", body={"username": "alice", "password": "nope"})
    assert r.status_code == recorded_status("logIn wrong password")
    assert r.json == STEPS["logIn wrong password"]["response_body"]


def test_me_and_current_session_with_method_get(client, alice):
    me = ok(sdk(client, "User.current / me", token=alice["sessionToken"]))
    assert me["objectId"] == alice["objectId"] and me["sessionToken"] == alice["sessionToken"]
    sess = ok(sdk(client, "Session.current", token=alice["sessionToken"]))
    assert set(STEPS["Session.current"]["response_body"]) <= set(sess)
    assert sess["installationId"] == STEPS["Session.current"]["request_body"]["_InstallationId"]
    assert sess["createdWith"] == {"action": "signup", "authProvider": "password"}


def test_invalid_token_is_209(client):
    r = sdk(client, "become with invalid token", token="r:00000000000000000000000000000000")
    assert r.status_code == recorded_status("become with invalid token")
    assert r.json == STEPS["become with invalid token"]["response_body"]


def test_anonymous_query_is_101(client):
    step = "query anonymously (CLP requiresAuthentication)"
    r = sdk(client, step, body={"where": {}})
    assert (r.status_code, r.json) == (recorded_status(step), STEPS[step]["response_body"])


def test_save_query_update_destroy(client, alice):
    tok = alice["sessionToken"]
    acl = {alice["objectId"]: {"read": True, "write": True}}
    prof = ok(sdk(client, "save Profile with ACL(owner)", "/parse/classes/Profile",
                  {"fullName": "SDK child", "ACL": acl}, token=tok), 201)
    pid = prof["objectId"]
    saved = ok(sdk(client, "save Allergy x3 (pointer, Date, ACL)", "/parse/classes/Allergy",
                   {**VALID["Allergy"], "profile": pointer("Profile", pid), "ACL": acl}, token=tok), 201)
    oid = saved["objectId"]
    # saveAll goes through /batch in the same envelope
    batch = ok(sdk(client, "saveAll (uses /batch)", body={"requests": [
        {"method": "POST", "path": "/parse/classes/Allergy",
         "body": {**VALID["Allergy"], "substance": s, "profile": pointer("Profile", pid), "ACL": acl}}
        for s in ("Kiwi", "Latex")]}, token=tok))
    assert [list(r) for r in batch] == [["success"], ["success"]]
    # query with _method GET: equalTo(pointer) + include + ascending
    step = "query equalTo(pointer) + include + ascending"
    res = ok(sdk(client, step, body={"where": {"profile": pointer("Profile", pid)}, "include": "profile",
                                     "order": "substance"}, token=tok))["results"]
    assert [a["substance"] for a in res] == ["Kiwi", "Latex", "Peanut"]
    assert res[0]["profile"]["__type"] == "Object" and res[0]["profile"]["fullName"] == "SDK child"
    count = ok(sdk(client, "query count", body={"where": {"profile": pointer("Profile", pid)}, "limit": 0,
                                                "count": 1}, token=tok))
    assert count == {"results": [], "count": 3}
    # update with _method PUT
    up = ok(sdk(client, "update with increment/addUnique", f"/parse/classes/Allergy/{oid}",
                {"notes": "from the SDK", "severity": "mild"}, token=tok))
    assert set(up) == {"updatedAt"}
    got = ok(sdk(client, "get by id", "/parse/classes/Allergy", {"where": {"objectId": oid}, "limit": 1},
                 token=tok))["results"]
    assert got[0]["notes"] == "from the SDK" and got[0]["severity"] == "mild"
    # destroy with _method DELETE, then the get finds nothing
    assert ok(sdk(client, "destroy object", f"/parse/classes/Allergy/{oid}", token=tok)) == {}
    gone = ok(sdk(client, "get destroyed object", "/parse/classes/Allergy", {"where": {"objectId": oid}, "limit": 1},
                  token=tok))
    assert gone == STEPS["get destroyed object"]["response_body"] == {"results": []}


def test_file_save_base64_and_attach(client, alice):
    tok = alice["sessionToken"]
    step = "Parse.File save (text)"
    body = {k: v for k, v in STEPS[step]["request_body"].items() if not k.startswith("_")}
    stored = ok(sdk(client, step, body=body, token=tok), recorded_status(step))
    assert set(stored) == set(STEPS[step]["response_body"])
    assert stored["name"].endswith("_sdk-note.txt")
    pid = ok(sdk(client, "save Profile with ACL(owner)", "/parse/classes/Profile", {"fullName": "P"}, token=tok), 201)["objectId"]
    doc = ok(sdk(client, "save Allergy x3 (pointer, Date, ACL)", "/parse/classes/MedicalDocument", {
        "profile": pointer("Profile", pid), "documentType": "note", "title": "SDK note",
        "file": {"__type": "File", "name": stored["name"], "url": stored["url"]}}, token=tok), 201)["objectId"]
    got = ok(sdk(client, "get by id", "/parse/classes/MedicalDocument", {"where": {"objectId": doc}}, token=tok))
    url = got["results"][0]["file"]["url"]
    r = client.get(url.replace("http://testserver", ""))
    assert r.status_code == 200 and r.data == b"sdk file body\n"


def test_other_user_sees_nothing_and_changes_nothing(client, alice):
    tok = alice["sessionToken"]
    pid = ok(sdk(client, "save Profile with ACL(owner)", "/parse/classes/Profile", {"fullName": "A"}, token=tok), 201)["objectId"]
    oid = ok(sdk(client, "save Allergy x3 (pointer, Date, ACL)", "/parse/classes/Allergy",
                 {**VALID["Allergy"], "profile": pointer("Profile", pid)}, token=tok), 201)["objectId"]
    bob = ok(sdk(client, "signUp bob", body={"username": "bob", "password": "pw-B-1"}), 201)["sessionToken"]
    step = "bob get alice Allergy"
    r = sdk(client, step, "/parse/classes/Allergy", {"where": {"objectId": oid}, "limit": 1}, token=bob)
    assert ok(r) == STEPS[step]["response_body"] == {"results": []}
    assert ok(sdk(client, "bob query Allergy", body={"where": {}}, token=bob)) == {"results": []}
    for step in ("bob update alice Allergy", "bob destroy alice Allergy"):
        r = sdk(client, step, f"/parse/classes/Allergy/{oid}", {"notes": "x"} if "update" in step else None, token=bob)
        assert (r.status_code, r.json) == (recorded_status(step), STEPS[step]["response_body"])
    assert "notes" not in ok(sdk(client, "get by id", "/parse/classes/Allergy", {"where": {"objectId": oid}},
                                 token=tok))["results"][0]


def test_logout_in_the_sdk_form(client, alice):
    tok = alice["sessionToken"]
    assert ok(sdk(client, "logOut alice", token=tok)) == STEPS["logOut alice"]["response_body"] == {}
    parse_error(sdk(client, "User.current / me", token=tok), 209)


def test_master_key_in_the_body(client, alice):
    tok = alice["sessionToken"]
    pid = ok(sdk(client, "save Profile with ACL(owner)", "/parse/classes/Profile", {"fullName": "A"}, token=tok), 201)["objectId"]
    sdk(client, "save Allergy x3 (pointer, Date, ACL)", "/parse/classes/Allergy",
        {**VALID["Allergy"], "profile": pointer("Profile", pid)}, token=tok)
    step = "master key: count all Allergy"
    assert "_MasterKey" in STEPS[step]["request_body"]
    r = ok(sdk(client, step, body={"where": {}, "limit": 0, "count": 1}, master=True))
    assert r == {"results": [], "count": 1}
    body = {"where": {}, "limit": 0, "count": 1, **envelope(step), "_MasterKey": "wrong"}
    r = client.post("/parse/classes/Allergy", data=orjson.dumps(body), content_type="text/plain")
    assert r.status_code == 403 and r.json == {"error": "unauthorized"}


def test_schema_mismatch_and_unknown_class_in_the_sdk_form(client, alice, rows):
    tok = alice["sessionToken"]
    step = "query non-existent class"
    r = sdk(client, step, body={"where": {}}, token=tok)
    assert (r.status_code, r.json["code"]) == (recorded_status(step), STEPS[step]["response_body"]["code"])
    step = "save to non-existent class"
    r = sdk(client, step, body={"a": 1}, token=tok)
    assert (r.status_code, r.json["code"]) == (recorded_status(step), STEPS[step]["response_body"]["code"])
    step = "save schema mismatch"
    r = sdk(client, step, "/parse/classes/Allergy", {"severity": 3}, token=tok)
    assert (r.status_code, r.json["code"]) == (recorded_status(step), 111)
    assert rows("Allergy") == 0


def test_method_in_body_overrides_only_post(client, alice):
    # A GET whose query string says _method=DELETE must stay a GET.
    tok = alice["sessionToken"]
    pid = ok(sdk(client, "save Profile with ACL(owner)", "/parse/classes/Profile", {"fullName": "A"}, token=tok), 201)["objectId"]
    r = client.get(f"/parse/classes/Profile/{pid}", headers={"X-Parse-Application-Id": APP_ID,
                                                             "X-Parse-Session-Token": tok},
                   query_string={"_method": "DELETE"})
    assert ok(r)["objectId"] == pid
    assert ok(sdk(client, "get by id", "/parse/classes/Profile", {"where": {"objectId": pid}}, token=tok))["results"]
