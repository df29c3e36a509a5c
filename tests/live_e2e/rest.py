"""A small client of the real server's native and FHIR APIs (requests), for the live e2e tests."""
from __future__ import annotations

import secrets
from typing import Any

import requests


class Rest:
    def __init__(self, server, token: str | None = None):
        self.server = server
        self.token = token

    def headers(self, fhir: bool = False) -> dict[str, str]:
        h = {"X-Parse-Application-Id": self.server.app_id, "X-Parse-Javascript-Key": self.server.javascript_key,
             "Content-Type": "application/fhir+json" if fhir else "application/json"}
        if self.token:
            h["X-Parse-Session-Token"] = self.token
        return h

    def parse(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = requests.request(method, f"{self.server.url}/parse{path}", json=body, headers=self.headers(), timeout=10)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json()

    def fhir(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        r = requests.request(method, f"{self.server.url}/fhir/{path}", json=body, headers=self.headers(fhir=True),
                             timeout=10)
        assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else None


def signup(server, prefix: str) -> tuple[str, Rest]:
    """A new user (unique name): (objectId, a client acting as them)."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    body = Rest(server).parse("POST", "/users", {"username": name, "password": "pw-123456"}, expect=201)
    return body["objectId"], Rest(server, body["sessionToken"])


def pointer(cls: str, oid: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": oid}
