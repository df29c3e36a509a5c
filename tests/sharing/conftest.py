"""Helpers for the sharing tests: the native helpers (profiles, records, uploads, provider users, grants),
the FHIR client, and the SMART helpers (authorize walk, Backend Services keys), all on an app served at
http://localhost (a loopback address, where OAuth over plain http is allowed)."""
from __future__ import annotations

import pytest

from tests.bulk.conftest import run_worker  # noqa: F401 (fixture)
from tests.conftest import Parse, pointer
from tests.fhir.conftest import Fhir, fhir_master  # noqa: F401 (fixtures)
from tests.native.conftest import (  # noqa: F401 (fixtures)
    audit_count, make_document, make_profile, make_record, ok, provider_user, rows, share, upload,
)
from tests.smart.conftest import BASE, Smart, rs384, smart  # noqa: F401 (fixtures)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "BASE_URL": BASE}


def fhir_as(client, who: Parse) -> Fhir:
    """The FHIR face for the same person as a native client (first-party: the session token)."""
    return Fhir(client.client if hasattr(client, "client") else client, who.token, who.master)


__all__ = ["pointer"]
