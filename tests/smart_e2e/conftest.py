"""Real clients against the real server (tests/e2e/conftest.py's `live_server`): a person with records,
registered SMART clients, and `approve()`, which signs in and decides on our authorize pages the way a
browser without JavaScript does (plain requests: follow redirects, read the form, post it)."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.conftest import live_server  # noqa: F401  (the fixture)

PASSWORD = "e2e-pw-123456"


@dataclass
class Person:
    username: str
    user_id: str
    token: str
    profiles: list[str]


def _parse(server, method: str, path: str, token: str | None = None, **kw) -> dict:
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-JavaScript-Key": server.javascript_key,
               "Content-Type": "application/json"}
    if token:
        headers["X-Parse-Session-Token"] = token
    r = requests.request(method, f"{server.parse_url}{path}", headers=headers, timeout=30, **kw)
    assert r.status_code in (200, 201), (path, r.status_code, r.text[:1000])
    return r.json()


def make_person(server, username: str, names: list[str], labs: int = 2) -> Person:
    """A person who owns a profile per name, each with a few lab results."""
    user = _parse(server, "POST", "/users", json={"username": username, "password": PASSWORD})
    token = user["sessionToken"]
    profiles = []
    for name in names:
        pid = _parse(server, "POST", "/classes/Profile", token, json={"fullName": name})["objectId"]
        for i in range(labs):
            _parse(server, "POST", "/classes/LabResult", token, json={
                "profile": {"__type": "Pointer", "className": "Profile", "objectId": pid},
                "testName": "Glucose", "value": 90 + i, "units": "mg/dL",
                "date": {"__type": "Date", "iso": f"2024-01-0{i + 1}T08:00:00.000Z"}})
        profiles.append(pid)
    return Person(username, user["objectId"], token, profiles)


@pytest.fixture(scope="module")
def people(live_server):  # noqa: F811
    tag = secrets.token_hex(3)
    return {
        "alice": make_person(live_server, f"alice-{tag}", ["Alice Rutherford"]),
        "carol": make_person(live_server, f"carol-{tag}", ["Carol Smith", "Danny Smith"]),
    }


def _form(html: str, action_contains: str) -> tuple[str, dict[str, str | list[str]]]:
    forms = re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', html, re.DOTALL)
    for action, body in forms:
        if action_contains in action:
            fields: dict = {}
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body):
                fields[name] = value
            return action, fields
    raise AssertionError(f"no form posting to {action_contains}:\n{html[:3000]}")


def approve(authorize_url: str, username: str, *, patient: str | None = None, untick=(),
            session: requests.Session | None = None) -> str:
    """Sign in and approve on our pages; returns the redirect back to the app (not followed)."""
    s = session or requests.Session()
    page = s.get(authorize_url, timeout=30)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:2000]
    action, fields = _form(page.text, "sign-in")
    consent = s.post(urljoin(page.url, action), data={**fields, "username": username, "password": PASSWORD},
                     timeout=30)
    assert consent.status_code == 200 and "Allow" in consent.text, consent.text[:2000]
    action, fields = _form(consent.text, "/decide")
    scopes = [v for v in re.findall(r'name="scope" value="([^"]+)"', consent.text) if v not in untick]
    choices = re.findall(r'name="patient" value="([^"]+)"', consent.text)
    data: dict = {**fields, "decision": "approve", "scope": scopes}
    if choices:
        data["patient"] = patient or choices[0]
    done = s.post(urljoin(consent.url, action), data=data, allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text[:2000]
    return done.headers["Location"]
