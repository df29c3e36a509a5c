"""Helpers for the operations tests: the access log's lines as the process wrote them to stdout."""
from __future__ import annotations

from typing import Any

import orjson

from tests.native.conftest import make_profile, make_record  # noqa: F401 (fixtures)
from tests.smart.conftest import app_config, smart  # noqa: F401 (fixtures: the app at http://localhost)
from tests.fhir.conftest import alice, load_record, person  # noqa: F401 (fixtures)


def access_lines(out: str) -> list[dict[str, Any]]:
    """The access log's JSON lines among what was written to stdout."""
    lines = []
    for line in out.splitlines():
        if line.startswith("{") and '"request_id"' in line:
            lines.append(orjson.loads(line))
    return lines


def by_request_id(out: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for line in access_lines(out):
        assert line["request_id"] not in found, f"two lines for one request: {line}"
        found[line["request_id"]] = line
    return found
