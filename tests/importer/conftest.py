"""Helpers for the importer tests: an owner account, the CLI run against the test database, and queries of
what landed in the store."""
from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gateway import cli
from gateway.models import FhirResource
from gateway.services.users import UserService


@pytest.fixture
def owner(db_session):
    user = UserService(db_session).create_user("ann", "pw-123456", role="caregiver")
    db_session.commit()
    return user


@pytest.fixture
def run_cli(app, monkeypatch):
    """run_cli("import", "--owner", "ann", path) -> click Result, on this test's database (its outer
    transaction is rolled back afterwards; the command's commits are savepoints)."""
    monkeypatch.setattr(cli, "_app", lambda: app)

    def run(*args: str):
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    return run


def last_json(output: str) -> dict[str, Any]:
    return orjson.loads(output.strip().splitlines()[-1])


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def fhir_body(session, resource_type: str, rid: str) -> dict[str, Any]:
    row = session.get(FhirResource, (resource_type, rid))
    assert row is not None and not row.deleted, f"{resource_type}/{rid} is not in the FHIR view"
    return orjson.loads(row.body)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}
