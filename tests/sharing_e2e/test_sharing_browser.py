"""The sharing pages in headless Chromium against the real server: a patient signs in, shares two
categories with a provider, sees the share listed, the provider reads the data (FHIR, its own session),
she ends it on the page, the provider's access disappears and the access log shows it all.
Screenshots go to docs/screenshots/."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.smart_e2e.conftest import PASSWORD, _parse, make_person

pytestmark = pytest.mark.e2e
SHOTS = ROOT / "docs" / "screenshots"


def test_grant_see_revoke_and_audit(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    import secrets
    tag = secrets.token_hex(3)
    alice = make_person(live_server, f"alice-{tag}", ["Alice Rutherford"])
    pid = alice.profiles[0]
    dr_name = f"dr-{tag}"
    dr_uid = live_server.cli("users", "create", "--username", dr_name, "--password", PASSWORD, "--role", "provider")["objectId"]
    r = requests.post(f"{live_server.parse_url}/classes/Provider", headers=live_server.master_headers(), timeout=30,
                      json={"name": f"Dr Grey {tag}", "user": {"__type": "Pointer", "className": "_User", "objectId": dr_uid}})
    assert r.status_code == 201, r.text
    prov = r.json()["objectId"]
    dr = _parse(live_server, "POST", "/login", json={"username": dr_name, "password": PASSWORD})["sessionToken"]
    fhir = lambda path: requests.get(f"{live_server.url}/fhir/{path}", timeout=30,  # noqa: E731
                                     headers={"X-Parse-Session-Token": dr, "Accept": "application/fhir+json"})
    assert fhir(f"Patient/{pid}").status_code == 404

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{live_server.url}/account")
    browser.find_element(By.ID, "username").send_keys(alice.username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(lambda d: "Sharing" in d.title)
    Select(browser.find_element(By.ID, f"provider-{pid}")).select_by_value(prov)
    until = (date.today() + timedelta(days=30))
    browser.find_element(By.ID, f"until-{pid}").send_keys(until.strftime("%m%d%Y"))
    browser.find_element(By.ID, f"cat-{pid}-labs").click()
    browser.find_element(By.ID, f"cat-{pid}-allergies").click()
    browser.save_screenshot(str(SHOTS / "sharing-form.png"))
    browser.find_element(By.ID, f"share-button-{pid}").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "notice"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.grant.active")
    assert len(rows) == 1 and f"Dr Grey {tag}" in rows[0].text and "Lab results" in rows[0].text
    browser.save_screenshot(str(SHOTS / "sharing-listed.png"))

    labs = fhir(f"Observation?patient=Patient/{pid}")
    assert labs.status_code == 200 and len(labs.json().get("entry", [])) == 2
    assert fhir(f"Patient/{pid}").status_code == 200

    grant_id = rows[0].get_attribute("id").removeprefix("grant-")
    browser.find_element(By.ID, f"revoke-{grant_id}").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.grant.revoked"))
    assert fhir(f"Patient/{pid}").status_code == 404
    assert fhir(f"Observation?patient=Patient/{pid}").json().get("entry", []) == []

    browser.find_element(By.ID, f"audit-{pid}").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "timeline"))
    actions = [e.get_attribute("data-action") for e in browser.find_elements(By.CSS_SELECTOR, "tr.entry")]
    assert {"share", "revoke", "read"} <= set(actions), actions
    assert f"Dr Grey {tag}" in browser.page_source
    browser.save_screenshot(str(SHOTS / "sharing-audit.png"))
