"""Issue 4, 'Done when': the PyPI `fhirpy` client (sync), which no one here wrote, against the real server
(`phr-gateway serve`, gunicorn) on SQLite and PostgreSQL: search with params, fetch_all across pages,
count, read, create, update, delete; every resource it hands back is strict R4."""
from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from tests.e2e.fhir_clients import make_live_user
from tests.fhir import synthea
from tests.fhir.conftest import assert_r4

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def user(live_server):
    return make_live_user(live_server, labs=25)


@pytest.fixture
def client(user):
    return SyncFHIRClient(user.base, extra_headers={"X-Parse-Session-Token": user.token})


def test_search_count_and_fetch_all_across_pages(client, user):
    search = client.resources("Observation").search(subject=f"Patient/{user.patient_id}", category="laboratory")
    assert search.count() == 25
    first = search.limit(10).fetch()
    assert len(first) == 10
    everything = search.limit(10).sort("date").fetch_all()  # follows next links: 3 pages
    assert sorted(r["id"] for r in everything) == sorted(user.labs)
    dates = [r["effectiveDateTime"] for r in everything]
    assert dates == sorted(dates)
    for r in everything:
        assert_r4(r.serialize())
    glucose = client.resources("Observation").search(code=f"{synthea.LOINC}|2339-0").fetch_all()
    assert glucose and all(r["code"]["coding"][0]["code"] == "2339-0" for r in glucose)
    assert client.resources("Patient").search(family="rutherford").count() == 1


def test_read_create_update_delete(client, user):
    patient = client.reference("Patient", user.patient_id).to_resource()
    assert patient["id"] == user.patient_id
    assert_r4(patient.serialize())
    obs = client.resource("Observation", **synthea.lab(f"Patient/{user.patient_id}", 1, synthea.date(2025, 5, 5),
                                                          value=6.1))
    obs.save()
    assert obs["id"] and obs["meta"]["versionId"] == "1"
    obs["valueQuantity"]["value"] = 6.3
    obs.save()
    fresh = client.reference("Observation", obs["id"]).to_resource()
    assert fresh["valueQuantity"]["value"] == 6.3 and fresh["meta"]["versionId"] == "2"
    assert_r4(fresh.serialize())
    fresh.delete()
    with pytest.raises(ResourceNotFound):  # 410 Gone: fhirpy treats it as not found
        client.reference("Observation", obs["id"]).to_resource()


def test_errors_are_operation_outcomes(client):
    with pytest.raises(ResourceNotFound):
        client.reference("Observation", "nosuchid00").to_resource()
    with pytest.raises(OperationOutcome) as e:
        client.resources("Observation").search(colour="blue").fetch()
    assert "colour" in str(e.value)
    bad = client.resource("Observation", status="bogus", code={"text": "x"})
    with pytest.raises(OperationOutcome):
        bad.save()


def test_master_key_client(live_server, user):
    master = SyncFHIRClient(user.base, extra_headers={"X-Parse-Master-Key": live_server.master_key})
    assert master.resources("Observation").search(subject=f"Patient/{user.patient_id}").count() >= 25
