"""Helpers for the GraphQL tests: a small client for /parse/graphql speaking the native headers, and the
native tests' fixtures for making users, profiles, records and grants through the REST face (one store)."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import APP_ID, MASTER_KEY, Parse
from tests.native import conftest as native

# The native tests' fixtures, shared: records made through REST are the ones GraphQL must show.
make_profile, make_record, provider_user, share = (
    native.make_profile, native.make_record, native.provider_user, native.share)


class GraphQL:
    """gql(query, variables) -> the response's JSON; `.last` keeps the response (status, headers)."""

    def __init__(self, client, token: str | None = None, master: bool = False, headers: dict | None = None):
        self.client = client
        self.token = token
        self.master = master
        self.extra = headers
        self.last = None

    def headers(self) -> dict[str, str]:
        h = {"X-Parse-Application-Id": APP_ID} if self.extra is None else dict(self.extra)
        if self.token:
            h["X-Parse-Session-Token"] = self.token
        if self.master:
            h["X-Parse-Master-Key"] = MASTER_KEY
        return h

    def __call__(self, query: str, variables: dict[str, Any] | None = None, *, status: int = 200) -> dict:
        body = {"query": query, **({"variables": variables} if variables is not None else {})}
        self.last = self.client.post("/parse/graphql", data=orjson.dumps(body), headers=self.headers(),
                                     content_type="application/json")
        assert self.last.status_code == status, (self.last.status_code, self.last.get_data(as_text=True))
        return self.last.json

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict:
        """The `data` of an answer that must have no error."""
        out = self(query, variables)
        assert "errors" not in out, out
        return out["data"]


def gql_of(parse: Parse) -> GraphQL:
    """The GraphQL client acting as the same caller as a native test client."""
    return GraphQL(parse.client, parse.token, parse.master)


def codes(answer: dict) -> list[int]:
    return [e["extensions"]["code"] for e in answer.get("errors", [])]


@pytest.fixture
def gql(client) -> GraphQL:
    """Anonymous (application id only)."""
    return GraphQL(client)


@pytest.fixture
def master_gql(client) -> GraphQL:
    return GraphQL(client, master=True)


@pytest.fixture
def alice(signup, make_profile, make_record):
    """Alice, her profile, three allergies and a medication, made through the REST face."""
    uid, rest = signup("alice")
    pid = make_profile(rest, "Alice Example")
    ids = {
        "peanut": make_record(rest, "Allergy", pid, substance="Peanut", severity="severe"),
        "milk": make_record(rest, "Allergy", pid, substance="Milk", severity="mild", isActive=False),
        "pollen": make_record(rest, "Allergy", pid, substance="Pollen", severity="moderate"),
        "med": make_record(rest, "Medication", pid),
    }
    return {"uid": uid, "rest": rest, "gql": gql_of(rest), "pid": pid, "ids": ids}


@pytest.fixture
def upload_file():
    """upload_file(parse_client) -> {name, url} of a file stored through /parse/files."""

    def make(rest: Parse, filename: str = "report.txt", data: bytes = b"HbA1c 6.1 %\n") -> dict:
        r = rest.client.post(f"/parse/files/{filename}", data=data, headers=rest.headers(), content_type="text/plain")
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.json

    return make


@pytest.fixture
def rows_of(db_session):
    """rows_of(action='read') -> how many AuditLog rows match."""
    from sqlalchemy import func, select

    from gateway.models import AuditLog

    def count(**where) -> int:
        db_session.expire_all()
        stmt = select(func.count()).select_from(AuditLog)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditLog, k) == v)
        return db_session.scalar(stmt)

    return count
