"""The authorize pages in headless Chromium (Debian's chromium + chromium-driver; nothing is downloaded):
a caregiver signs in, picks one of her profiles, unticks a scope and approves; the granted scope reflects
the untick. Screenshots of the pages go to docs/screenshots/."""
from __future__ import annotations

import os
import shutil
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.smart.conftest import pkce
from tests.smart_e2e.conftest import PASSWORD

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "docs" / "screenshots"
SCOPE = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Immunization.rs"


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("needs the Debian packages chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage", "--window-size=900,1100"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_sign_in_pick_profile_untick_and_approve(live_server, people, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    carol = people["carol"]
    redirect = f"{live_server.url}/healthz"  # a page of ours: the browser lands there with the code
    cid = live_server.cli("clients", "create", "--name", "Sunrise Health Diary", "--public",
                          "--redirect-uri", redirect)["client_id"]
    verifier, challenge = pkce()
    params = {"response_type": "code", "client_id": cid, "redirect_uri": redirect, "scope": SCOPE,
              "state": "browser-state-1", "aud": f"{live_server.url}/fhir", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    browser.get(f"{live_server.url}/oauth/authorize?{urlencode(params)}")
    assert "Sign in" in browser.title
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "smart-sign-in.png"))
    browser.find_element(By.ID, "username").send_keys(carol.username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 20).until(lambda d: "Allow" in d.title)
    assert "Allow Sunrise Health Diary" in browser.title
    radio = browser.find_element(By.CSS_SELECTOR, f'input[name="patient"][value="{carol.profiles[1]}"]')
    radio.click()
    box = browser.find_element(By.CSS_SELECTOR, 'input[name="scope"][value="patient/Immunization.rs"]')
    box.click()
    assert not box.is_selected() and radio.is_selected()
    browser.save_screenshot(str(SHOTS / "smart-consent.png"))
    browser.find_element(By.ID, "approve").click()
    WebDriverWait(browser, 20).until(lambda d: urlsplit(d.current_url).path == "/healthz")
    landed = urlsplit(browser.current_url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == redirect
    query = {k: v[0] for k, v in parse_qs(landed.query).items()}
    assert query["state"] == "browser-state-1" and query["code"]
    r = requests.post(f"{live_server.url}/oauth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": redirect, "client_id": cid,
        "code_verifier": verifier})
    assert r.status_code == 200, r.text
    token = r.json()
    granted = set(token["scope"].split())
    assert "patient/Immunization.rs" not in granted
    assert {"patient/Patient.rs", "patient/Observation.rs", "openid", "fhirUser"} <= granted
    assert token["patient"] == carol.profiles[1]
    assert (SHOTS / "smart-consent.png").stat().st_size > 10_000
