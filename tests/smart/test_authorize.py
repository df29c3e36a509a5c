"""The authorize endpoint and pages: exact redirect_uri, aud must be our FHIR base, PKCE S256 for every
client, state echoed, errors to the app only at a registered redirect_uri, sign in, choose the record,
untick scopes, approve or deny; CSRF-protected forms that work without JavaScript."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.smart.conftest import FHIR, REDIRECT, csrf_of, query_of

SCOPE = ("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Immunization.rs "
         "offline_access")


@pytest.fixture
def app_public(smart):
    return smart.register(kind="none")


@pytest.mark.parametrize("aud", ["https://evil.example.org/fhir", "http://localhost/fhir/other", "", None])
def test_foreign_aud_never_yields_a_code(smart, app_public, alice, aud):
    launch = smart.launch(app_public, SCOPE, "alice", aud=aud)
    assert "code" not in launch.params
    assert launch.params.get("error") == "invalid_request" and launch.params["state"] == launch.state
    assert launch.location.startswith(REDIRECT)


def test_trailing_slash_aud_is_our_base(smart, app_public, alice):
    launch = smart.launch(app_public, SCOPE, "alice", aud=FHIR + "/", patient=alice.patient_id)
    assert launch.code and launch.params["state"] == launch.state


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_standalone_launch_get_and_post(smart, app_public, alice, method):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id, method=method)
    assert launch.location.startswith(REDIRECT + "?")
    assert launch.code and launch.params["state"] == launch.state


@pytest.mark.parametrize("over, error", [
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
])
def test_pkce_s256_required_and_bad_requests_go_back_with_state(smart, app_public, over, error):
    params, _ = smart.authorize_params(app_public, SCOPE, **over)
    r = smart.start(params)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    q = query_of(r.headers["Location"])
    assert q["error"] == error and q["state"] == params["state"] and "code" not in q


def test_confidential_clients_need_pkce_too(smart):
    app = smart.register(kind="client_secret_basic")
    params, _ = smart.authorize_params(app, SCOPE, code_challenge=None, code_challenge_method=None)
    q = query_of(smart.start(params).headers["Location"])
    assert q["error"] == "invalid_request"


@pytest.mark.parametrize("redirect_uri", ["https://evil.example.org/cb", REDIRECT + "/x", REDIRECT + "?a=1", None])
def test_unregistered_redirect_uri_gets_a_page_not_a_redirect(smart, app_public, redirect_uri):
    params, _ = smart.authorize_params(app_public, SCOPE, redirect_uri=redirect_uri)
    r = smart.start(params)
    assert r.status_code == 400 and "Location" not in r.headers
    assert r.mimetype == "text/html" and "cannot be completed" in r.get_data(as_text=True)


def test_unknown_client_gets_a_page(smart, app_public):
    params, _ = smart.authorize_params(app_public, SCOPE, client_id="nobody")
    r = smart.start(params)
    assert r.status_code == 400 and "Location" not in r.headers


def test_deny_goes_back_with_access_denied(smart, app_public, alice):
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id, decision="deny")
    assert launch.params["error"] == "access_denied" and launch.params["state"] == launch.state
    assert "code" not in launch.params


def test_unticking_everything_is_a_denial(smart, app_public, alice):
    untick = SCOPE.split()
    launch = smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id, untick=untick)
    assert launch.params["error"] == "access_denied"


def test_pages_need_no_javascript_and_are_not_framed(smart, app_public, alice, client):
    params, _ = smart.authorize_params(app_public, SCOPE)
    r = smart.start(params)
    page = client.get(r.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<script" not in html.lower()
    assert '<form method="post"' in html and 'name="password"' in html
    assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    consent = smart.sign_in(r.headers["Location"], "alice").get_data(as_text=True)
    assert "<script" not in consent.lower() and "Health Buddy" in consent
    assert 'type="radio" name="patient"' in consent and 'type="checkbox" name="scope"' in consent


def test_wrong_password_stays_on_the_sign_in_page(smart, app_public, alice, client):
    r = smart.start(smart.authorize_params(app_public, SCOPE)[0])
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    nxt = re.search(r'name="next" value="([^"]+)"', html).group(1)
    bad = client.post("/oauth/sign-in", data={"csrf": csrf_of(html), "next": nxt, "username": "alice",
                                              "password": "wrong"})
    assert bad.status_code == 401 and "do not match" in bad.get_data(as_text=True)
    nobody = client.post("/oauth/sign-in", data={"csrf": csrf_of(html), "next": nxt, "username": "nobody",
                                                 "password": "wrong"})
    assert nobody.status_code == 401


def test_forms_are_csrf_protected(smart, app_public, alice, client):
    r = smart.start(smart.authorize_params(app_public, SCOPE)[0])
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    nxt = re.search(r'name="next" value="([^"]+)"', html).group(1)
    forged = client.post("/oauth/sign-in", data={"csrf": "forged", "next": nxt, "username": "alice",
                                                 "password": "pw-123456"})
    assert forged.status_code == 400 and "Location" not in forged.headers
    consent = smart.sign_in(r.headers["Location"], "alice")
    rid = urlsplit(r.headers["Location"]).path.split("/")[-1]
    no_csrf = client.post(f"/oauth/authorize/{rid}/decide", data={"decision": "approve", "scope": ["openid"],
                                                                  "patient": alice.patient_id})
    assert no_csrf.status_code == 400 and "Location" not in no_csrf.headers
    assert csrf_of(consent.get_data(as_text=True))


def test_a_record_not_yours_cannot_be_chosen(smart, app_public, alice, bob, client):
    r = smart.start(smart.authorize_params(app_public, SCOPE)[0])
    consent = smart.sign_in(r.headers["Location"], "alice").get_data(as_text=True)
    assert bob.patient_id not in consent
    rid = urlsplit(r.headers["Location"]).path.split("/")[-1]
    r = client.post(f"/oauth/authorize/{rid}/decide", data={"csrf": csrf_of(consent), "decision": "approve",
                                                             "scope": SCOPE.split(), "patient": bob.patient_id})
    assert r.status_code == 400 and "Location" not in r.headers


def test_caregiver_chooses_among_several_profiles(smart, app_public, person, client):
    carer = person("carol")
    p1 = carer.parse.post("/classes/Profile", {"fullName": "Carol Smith"}).json["objectId"]
    p2 = carer.parse.post("/classes/Profile", {"fullName": "Danny Smith"}).json["objectId"]
    r = smart.start(smart.authorize_params(app_public, SCOPE)[0])
    consent = smart.sign_in(r.headers["Location"], "carol").get_data(as_text=True)
    assert "Carol Smith" in consent and "Danny Smith" in consent
    launch = smart.launch(app_public, SCOPE, "carol", patient=p2)
    token = smart.exchange(app_public, launch).json
    assert token["patient"] == p2 and token["patient"] != p1


def test_already_signed_in_goes_straight_to_consent(smart, app_public, alice, client):
    smart.launch(app_public, SCOPE, "alice", patient=alice.patient_id)
    r = smart.start(smart.authorize_params(app_public, SCOPE)[0])
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'name="password"' not in page and "Signed in as" in page


def test_manage_page_lists_and_ends_an_apps_access(smart, app_public, alice, client):
    token = smart.login(app_public, SCOPE, "alice", patient=alice.patient_id)
    page = client.get("/oauth/manage").get_data(as_text=True)
    assert "Health Buddy" in page
    action = re.search(r'action="(/oauth/manage/[^"]+/revoke)"', page).group(1)
    r = client.post(action, data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert smart.fhir(token["access_token"]).get(f"Patient/{alice.patient_id}").status_code == 401
