"""Helpers for the native API tests: records made through the API itself, configuration overrides, and
direct counts of what landed in the database (to prove that a refused request wrote nothing)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from gateway import create_app
from gateway.models import MODELS, AuditLog
from tests.conftest import Parse, date, pointer

#: A valid body per PHR class (a profile pointer is added where the class needs one).
VALID = {
    "Allergy": {"substance": "Peanut", "severity": "severe", "reaction": "Hives"},
    "Vaccination": {"vaccineName": "MMR", "dateAdministered": date("2020-01-02")},
    "Medication": {"name": "Metformin", "dose": "500 mg"},
    "LabResult": {"testName": "Glucose", "value": 98, "units": "mg/dL", "date": date("2025-09-20")},
    "EmergencyContact": {"name": "Jordan", "relationship": "spouse", "phone": "+1 555 0199"},
}
#: The SharedAccess scope that covers each profile class.
SCOPE = {"Allergy": "allergies", "Vaccination": "immunizations", "Medication": "medications",
         "LabResult": "labs", "EmergencyContact": "contacts", "MedicalDocument": "documents"}

#: A real Parse Server 9's recorded traffic: ../shared beside the repository (as in CI), or /work/shared.
PARSE_TRANSCRIPT = next((p for p in (
    Path(__file__).resolve().parents[3] / "shared/reference/parse-server/transcript.json",
    Path("/work/shared/reference/parse-server/transcript.json"),
) if p.exists()), Path("/work/shared/reference/parse-server/transcript.json"))


def ok(r, status: int = 200) -> Any:
    """The JSON of a response that must have this status (shows the body when it has not)."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    return r.json


def parse_error(r, code: int, status: int = 400) -> dict:
    """Assert Parse's error shape {code, error} with that code and HTTP status."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.is_json, r.get_data(as_text=True)
    assert r.json["code"] == code, r.json
    assert isinstance(r.json["error"], str) and r.json["error"]
    return r.json


@pytest.fixture
def make_profile():
    def make(client: Parse, name: str = "Alice Example", **extra) -> str:
        return ok(client.post("/classes/Profile", {"fullName": name, **extra}), 201)["objectId"]

    return make


@pytest.fixture
def make_record():
    """make_record(client, 'Allergy', profile_id, substance='Milk') -> objectId."""

    def make(client: Parse, class_name: str, profile_id: str, **fields) -> str:
        body = {**VALID[class_name], "profile": pointer("Profile", profile_id), **fields}
        return ok(client.post(f"/classes/{class_name}", body), 201)["objectId"]

    return make


@pytest.fixture
def upload():
    """upload(client, 'report.txt', b'...') -> {url, name}."""

    def make(client: Parse, filename: str = "report.txt", data: bytes = b"HbA1c 6.1 %\n",
             content_type: str = "text/plain") -> dict:
        r = client.client.post(f"/parse/files/{filename}", data=data, headers=client.headers(),
                               content_type=content_type)
        return ok(r, 201)

    return make


@pytest.fixture
def make_document(upload):
    """make_document(client, profile_id) -> (document objectId, file name)."""

    def make(client: Parse, profile_id: str, **fields) -> tuple[str, str]:
        stored = upload(client)
        body = {"profile": pointer("Profile", profile_id), "file": {"__type": "File", "name": stored["name"]},
                "documentType": "Lab report", "title": "Annual panel", **fields}
        return ok(client.post("/classes/MedicalDocument", body), 201)["objectId"], stored["name"]

    return make


@pytest.fixture
def provider_user(make_user, master):
    """provider_user('drwho') -> (user id, Provider objectId, Parse client): a provider login and its
    directory entry, made with the master key as an administrator would."""

    def make(username: str = "dr.who"):
        uid, client = make_user(username, role="provider")
        prov = ok(master.post("/classes/Provider", {"name": f"Dr {username}", "user": pointer("_User", uid)}), 201)
        return uid, prov["objectId"], client

    return make


@pytest.fixture
def share():
    """share(owner, profile_id, grantee_uid, scope=['allergies'], level='read', **extra) -> grant id."""

    def make(owner: Parse, profile_id: str, grantee: str | None = None, scope=("allergies",),
             level: str = "read", **extra) -> str:
        body = {"profile": pointer("Profile", profile_id), "accessLevel": level, "scope": list(scope), **extra}
        if grantee:
            body["grantee"] = pointer("_User", grantee)
        return ok(owner.post("/classes/SharedAccess", body), 201)["objectId"]

    return make


@pytest.fixture
def rows(db_session) -> Callable[..., int]:
    """rows('Allergy') / rows(AuditLog, action='read') -> how many rows the database holds (deleted too)."""

    def count(model, **where) -> int:
        model = MODELS[model] if isinstance(model, str) else model
        stmt = select(func.count()).select_from(model)
        for attr, value in where.items():
            stmt = stmt.where(getattr(model, attr) == value)
        db_session.expire_all()
        return db_session.scalar(stmt)

    return count


@pytest.fixture
def audit_count(rows) -> Callable[..., int]:
    def count(**where) -> int:
        return rows(AuditLog, **where)

    return count


@pytest.fixture
def configured(app_config):
    """configured(MAX_CONTENT_LENGTH=2048) -> a test client (Parse header form) on an app with those settings,
    on the same database connection as every other fixture of the test."""

    def make(**overrides) -> Parse:
        app = create_app({**app_config, **overrides})
        return Parse(app.test_client())

    return make
