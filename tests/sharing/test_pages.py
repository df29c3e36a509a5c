"""The patient's /account pages with the Flask test client: sign-in (the SMART pages' own), the list of who
has access, grant, revoke, the access log; CSRF, framing, caching and ownership are all enforced."""
from __future__ import annotations

import re
from datetime import date as Date, timedelta

import pytest

from tests.conftest import APP_ID, date
from tests.fhir import synthea
from tests.fhir.conftest import Fhir, body
from tests.native.conftest import ok
from tests.sharing.helpers import grant_body

PASSWORD = "pw-123456"
HEALTH_WORDS = ("Peanut-7731", "Hives-5521", "Glucose-4409", "Marchetti")


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(client, username: str):
    """Sign in on /account with the SMART sign-in form; returns the client (now holding the cookie)."""
    page = client.get("/account")
    html = page.get_data(as_text=True)
    r = client.post("/oauth/sign-in", data={"csrf": csrf(html), "next": "account", "username": username,
                                            "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"].rstrip("/").endswith("/account"), r.get_data(as_text=True)[:500]
    return client


@pytest.fixture
def scene(app, client, signup, make_profile, make_record, provider_user):
    _, alice = signup("alice")
    pid = make_profile(alice, "Alice Q. Marchetti")
    son = make_profile(alice, "Leo Marchetti")
    allergy = make_record(alice, "Allergy", pid, substance="Peanut-7731", reaction="Hives-5521")
    lab = make_record(alice, "LabResult", pid, testName="Glucose-4409")
    _, prov, dr = provider_user("dr.page")
    _, bob = signup("bob")
    bob_pid = make_profile(bob, "Bob")
    return {"alice": alice, "pid": pid, "son": son, "allergy": allergy, "lab": lab, "prov": prov, "dr": dr,
            "bob_pid": bob_pid, "browser": app.test_client(), "client": client}


def grant_form(s, **over):
    until = (Date.today() + timedelta(days=30)).isoformat()
    data = {"provider": s["prov"], "category": ["allergies", "labs"], "level": "read", "until": until, **over}
    return data


def test_signed_out_shows_sign_in_with_safe_headers(client):
    r = client.get("/account")
    assert r.status_code == 200 and 'name="password"' in r.get_data(as_text=True)
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "form-action 'self'" in r.headers["Content-Security-Policy"]
    assert "script-src" not in r.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    assert r.headers["Cache-Control"] == "no-store"
    for path in ("/account/profiles/x/audit",):
        assert 'name="password"' in client.get(path).get_data(as_text=True)


def test_wrong_password_grants_no_page(scene):
    b = scene["browser"]
    html = b.get("/account").get_data(as_text=True)
    r = b.post("/oauth/sign-in", data={"csrf": csrf(html), "next": "account", "username": "alice", "password": "nope"})
    assert r.status_code == 401
    assert 'name="password"' in b.get("/account").get_data(as_text=True)


def test_grant_list_revoke_and_log(scene, audit_count, rows):
    s = scene
    b = sign_in(s["browser"], "alice")
    home = b.get("/account")
    html = home.get_data(as_text=True)
    assert "Alice Q. Marchetti" in html and "Leo Marchetti" in html and "Dr dr.page" in html
    assert "Bob" not in html
    assert 'href="/account/export.zip"' in html
    assert home.headers["X-Frame-Options"] == "DENY" and home.headers["Cache-Control"] == "no-store"
    cookie = home.headers.get("Set-Cookie", "")
    assert not cookie or ("HttpOnly" in cookie and "SameSite=Lax" in cookie)

    shares = audit_count(action="share")
    r = b.post(f"/account/profiles/{s['pid']}/grants", data={"csrf": csrf(html), **grant_form(s)})
    assert r.status_code == 303
    assert audit_count(action="share") == shares + 1
    grant = ok(s["alice"].get("/classes/SharedAccess"))["results"][0]
    assert grant["scope"] == ["allergies", "labs"] and grant["provider"]["objectId"] == s["prov"]
    assert grant["accessLevel"] == "read"
    html = b.get("/account").get_data(as_text=True)
    assert f'id="grant-{grant["objectId"]}"' in html and 'data-status="active"' in html
    assert "Allergies, Lab results" in html and "Shared." in html
    # the provider sees it at once, on both faces, and only those categories
    dr_fhir = Fhir(s["client"], s["dr"].token)
    assert body(dr_fhir.get(f"AllergyIntolerance/{s['allergy']}"))["id"] == s["allergy"]
    assert s["dr"].get(f"/classes/LabResult/{s['lab']}").status_code == 200
    assert body(Fhir(s["client"], s["alice"].token).get(f"Consent/{grant['objectId']}"))["status"] == "active"

    revokes = audit_count(action="revoke")
    r = b.post(f"/account/grants/{grant['objectId']}/revoke", data={"csrf": csrf(html)})
    assert r.status_code == 303
    assert audit_count(action="revoke") == revokes + 1
    assert dr_fhir.get(f"AllergyIntolerance/{s['allergy']}").status_code == 404
    assert s["dr"].get(f"/classes/LabResult/{s['lab']}").status_code == 404
    html = b.get("/account").get_data(as_text=True)
    assert 'data-status="revoked"' in html and f'id="revoke-{grant["objectId"]}"' not in html

    log = b.get(f"/account/profiles/{s['pid']}/audit")
    text = log.get_data(as_text=True)
    assert log.headers["X-Frame-Options"] == "DENY"
    for action in ("share", "revoke", "read"):
        assert f'data-action="{action}"' in text, action
    assert f'data-entity="SharedAccess/{grant["objectId"]}"' in text
    assert 'data-entity="AllergyIntolerance/' not in text  # native class names, not a second vocabulary
    assert f'data-entity="Allergy/{s["allergy"]}"' in text
    assert "Dr dr.page (dr.page)" in text and "FHIR API" in text
    for word in HEALTH_WORDS[:3]:
        assert word not in text
    assert "Leo Marchetti" not in text


def test_statuses_active_expired_revoked(scene):
    s = scene
    alice = s["alice"]
    ok(alice.post("/classes/SharedAccess", grant_body(s["pid"], s["prov"], expiresAt=date("2099-01-01"))), 201)
    ok(alice.post("/classes/SharedAccess", grant_body(s["pid"], s["prov"], expiresAt=date("2021-01-01"))), 201)
    gid = ok(alice.post("/classes/SharedAccess", grant_body(s["pid"], s["prov"])), 201)["objectId"]
    ok(alice.put(f"/classes/SharedAccess/{gid}", {"revokedAt": date("2025-01-01T00:00:00.000Z")}))
    html = sign_in(s["browser"], "alice").get("/account").get_data(as_text=True)
    assert re.findall(r'data-status="(\w+)"', html) == ["active", "expired", "revoked"]


def test_csrf_is_required(scene, rows):
    s = scene
    b = sign_in(s["browser"], "alice")
    grants = rows("SharedAccess")
    r = b.post(f"/account/profiles/{s['pid']}/grants", data=grant_form(s))
    assert r.status_code == 400 and rows("SharedAccess") == grants
    r = b.post(f"/account/profiles/{s['pid']}/grants", data={"csrf": "forged", **grant_form(s)})
    assert r.status_code == 400 and rows("SharedAccess") == grants


def test_only_own_profiles(scene, rows):
    s = scene
    b = sign_in(s["browser"], "alice")
    html = b.get("/account").get_data(as_text=True)
    grants = rows("SharedAccess")
    r = b.post(f"/account/profiles/{s['bob_pid']}/grants", data={"csrf": csrf(html), **grant_form(s)})
    assert r.status_code == 404 and rows("SharedAccess") == grants
    assert b.get(f"/account/profiles/{s['bob_pid']}/audit").status_code == 404
    bob_grant = ok(s["client"].application.test_client().get("/healthz")) and None  # noqa: F841
    # the provider, signed in, cannot revoke Alice's grant either
    gid = ok(s["alice"].post("/classes/SharedAccess", grant_body(s["pid"], s["prov"])), 201)["objectId"]
    dr = sign_in(s["client"].application.test_client(), "dr.page")
    dr_html = dr.get("/account").get_data(as_text=True)
    assert dr.post(f"/account/grants/{gid}/revoke", data={"csrf": csrf(dr_html)}).status_code == 404
    assert "revokedAt" not in ok(s["alice"].get(f"/classes/SharedAccess/{gid}"))


@pytest.mark.parametrize("over,message", [
    ({"category": []}, "at least one kind"),
    ({"category": ["allergies", "secrets"]}, "at least one kind"),
    ({"until": "2001-01-01"}, "in the past"),
    ({"until": "not a date"}, "date"),
    ({"provider": "nosuchprov1"}, "directory"),
    ({"level": "admin"}, "view"),
])
def test_bad_forms_are_explained(scene, rows, over, message):
    s = scene
    b = sign_in(s["browser"], "alice")
    html = b.get("/account").get_data(as_text=True)
    grants = rows("SharedAccess")
    r = b.post(f"/account/profiles/{s['pid']}/grants", data={"csrf": csrf(html), **grant_form(s, **over)})
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert rows("SharedAccess") == grants


def test_download_my_record_with_the_page_session(scene):
    s = scene
    b = sign_in(s["browser"], "alice")
    r = b.get("/account/export.zip")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert s["client"].application.test_client().get("/account/export.zip").status_code == 401


def test_sign_out(scene):
    b = sign_in(scene["browser"], "alice")
    html = b.get("/account").get_data(as_text=True)
    assert b.post("/account/sign-out", data={"csrf": csrf(html)}).status_code == 303
    assert 'name="password"' in b.get("/account").get_data(as_text=True)


def lab_creates_on_the_access_log(s) -> list[str]:
    """The owner's access-log rows of lab creates, as HTML."""
    text = sign_in(s["browser"], "alice").get(f"/account/profiles/{s['pid']}/audit").get_data(as_text=True)
    return re.findall(r'<tr class="entry" data-action="create" data-entity="LabResult/\w+".*?</tr>', text,
                      re.S)


def test_a_transaction_is_one_entry_of_the_access_log(scene):
    """The owner's page shows a FHIR transaction's creates as one entry naming how many records it added."""
    s = scene
    labs = [synthea.lab(f"Patient/{s['pid']}", i, synthea.date(2024, 5, 1 + i)) for i in range(3)]
    entries = [{"fullUrl": synthea.urn(), "resource": r, "request": {"method": "POST", "url": "Observation"}}
               for r in labs]
    body(Fhir(s["client"], s["alice"].token).post("", {"resourceType": "Bundle", "type": "transaction",
                                                       "entry": entries}))
    rows = lab_creates_on_the_access_log(s)
    grouped = [r for r in rows if "3 records" in r]
    assert len(grouped) == 1 and "FHIR API" in grouped[0]
    assert len(rows) == 2  # and the lab of the scene, added alone


def test_a_native_transaction_is_one_entry_of_the_access_log(scene):
    """The same for `POST /parse/batch` with `transaction: true` (the PHR app's saveAll in one go)."""
    s = scene
    pointer = {"__type": "Pointer", "className": "Profile", "objectId": s["pid"]}
    ops = [{"method": "POST", "path": "/parse/classes/LabResult",
            "body": {"profile": pointer, "testName": f"Test {i}", "value": i, "units": "mg/dL",
                     "date": date("2025-09-20")}} for i in range(4)]
    headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Session-Token": s["alice"].token}
    r = s["client"].post("/parse/batch", json={"transaction": True, "requests": ops}, headers=headers)
    assert r.status_code == 200 and all("success" in x for x in r.json), r.get_data(as_text=True)
    rows = lab_creates_on_the_access_log(s)
    grouped = [r for r in rows if "4 records" in r]
    assert len(grouped) == 1 and "PHR app API" in grouped[0]
    assert len(rows) == 2  # and the lab of the scene, added alone
