"""Helpers for the FHIR face tests: a small FHIR client over the Flask test client, and `body()` which checks
status and content type, then proves every body we receive is R4: parsed by the strict PyPI `fhirclient`
models and checked by `conformance.validate.validate_r4` (each resource of a Bundle too)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from conformance.validate import validate_r4
from tests.conftest import APP_ID, MASTER_KEY, Parse, date, pointer  # noqa: F401  (re-exported for tests)
from tests.fhir import synthea

FHIR_JSON = "application/fhir+json"


def strict(resource: dict[str, Any]):
    """The strict fhirclient model of `resource` (raises on anything R4 does not allow)."""
    rt = resource["resourceType"]
    module = importlib.import_module(f"fhirclient.models.{rt.lower()}")
    return getattr(module, rt)(resource, strict=True)


def assert_r4(resource: dict[str, Any]) -> None:
    """Strict model + validate_r4 for a resource and, for a Bundle, for every resource in it."""
    strict(resource)
    problems = validate_r4(resource)
    assert not problems, f"{resource.get('resourceType')}/{resource.get('id')}: " + "\n".join(problems)
    for entry in resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []:
        for key in ("resource",):
            if key in entry:
                assert_r4(entry[key])
        if "outcome" in entry.get("response", {}):
            assert_r4(entry["response"]["outcome"])


def body(r, status: int = 200) -> dict[str, Any]:
    """The parsed, validated FHIR body of a response that must have this status."""
    text = r.get_data(as_text=True)
    assert r.status_code == status, (r.status_code, text[:3000])
    assert r.mimetype == FHIR_JSON, (r.mimetype, text[:500])
    data = orjson.loads(r.get_data())
    assert_r4(data)
    return data


def outcome(r, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an OperationOutcome error with this HTTP status (and issue code)."""
    data = body(r, status)
    assert data["resourceType"] == "OperationOutcome", data
    assert data["issue"] and data["issue"][0]["severity"] in ("error", "fatal"), data
    if code:
        assert data["issue"][0]["code"] == code, data
    return data


def ids(bundle: dict[str, Any], mode: str | None = "match") -> list[str]:
    """Ids of a searchset's entries (only `mode` entries unless None)."""
    return [e["resource"]["id"] for e in bundle.get("entry", [])
            if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)]


def refs(bundle: dict[str, Any], mode: str | None = None) -> list[str]:
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == relation), None)


def relative(url: str) -> str:
    """An absolute link of the test server as a path the test client can open."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Fhir:
    """A FHIR REST client speaking to the app under test, as a user (session token) or the master key."""

    def __init__(self, client, token: str | None = None, master: bool = False):
        self.client = client
        self.token = token
        self.master = master

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": FHIR_JSON}
        if self.token:
            h["X-Parse-Session-Token"] = self.token
        if self.master:
            h["X-Parse-Master-Key"] = MASTER_KEY
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, json: Any = None, *, headers: dict | None = None,
                params: Any = None, data: bytes | None = None, content_type: str = FHIR_JSON):
        url = path if path.startswith("/fhir") else "/fhir/" + path.lstrip("/")
        if json is not None:
            data = orjson.dumps(json)
        return self.client.open(url, method=method, data=data, query_string=params, headers=self.headers(headers),
                                content_type=content_type if data is not None else None)

    def get(self, path, params=None, **kw):
        return self.request("GET", path, params=params, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json, **kw)

    def patch(self, path, ops, **kw):
        return self.request("PATCH", path, ops, content_type="application/json-patch+json", **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # conveniences that assert success and validate
    def search(self, rt: str, params: Any = None, **kw) -> dict[str, Any]:
        bundle = body(self.get(rt, params, **kw))
        assert bundle["type"] == "searchset"
        return bundle

    def follow(self, url: str) -> dict[str, Any]:
        return body(self.get(relative(url)))

    def create(self, resource: dict[str, Any], **kw) -> dict[str, Any]:
        return body(self.post(resource["resourceType"], resource, **kw), 201)

    def read(self, ref: str) -> dict[str, Any]:
        return body(self.get(ref))

    def transaction(self, bundle: dict[str, Any], status: int = 200) -> dict[str, Any]:
        return body(self.post("", bundle), status)


@dataclass
class Person:
    """A signed-up user with a native and a FHIR client, and (once made) their Patient."""

    user_id: str
    parse: Parse
    fhir: Fhir
    patient_id: str | None = None
    record: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"Patient/{self.patient_id}"


@pytest.fixture
def fhir_master(client) -> Fhir:
    return Fhir(client, master=True)


@pytest.fixture
def anonymous(client) -> Fhir:
    return Fhir(client)


@pytest.fixture
def person(client, signup):
    """person('alice') -> a signed-up Person without a record yet."""

    def make(username: str) -> Person:
        uid, parse = signup(username)
        return Person(uid, parse, Fhir(client, parse.token))

    return make


def load_record(who: Person, **kwargs) -> Person:
    """Import a Synthea-style record for `who` through a FHIR transaction; fills patient_id and record
    (resource type -> ids in bundle order)."""
    bundle = synthea.record_bundle(**kwargs)
    result = who.fhir.transaction(bundle)
    record: dict[str, list[str]] = {}
    for entry in result["entry"]:
        rt, rid = entry["response"]["location"].split("/")[:2]
        record.setdefault(rt, []).append(rid)
    who.patient_id = record["Patient"][0]
    who.record = record
    return who


@pytest.fixture
def alice(person) -> Person:
    """Alice with an imported Synthea-style record: 1 Patient, 4 labs, 2 immunizations, 1 allergy, 1 med."""
    return load_record(person("alice"), family="Rutherford", given="Amelia", mrn="MRN-ALICE")


@pytest.fixture
def bob(person) -> Person:
    """Bob with a smaller record of his own (he must never see Alice's)."""
    return load_record(person("bob"), family="Okafor", given="Ben", labs=2, vaccines=1, mrn="MRN-BOB", seed=11)


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)
