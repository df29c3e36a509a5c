"""Kick-off requests (Bulk Data 2.0 export.html#bulk-data-kick-off-request): levels, GET and POST, the
parameters we support, the ones we do not (400 unless `Prefer: handling=lenient`), and `respond-async`."""
from __future__ import annotations

import pytest

from tests.bulk.conftest import BASE, assert_valid_lines, export_all, kick_off, parameters
from tests.fhir.conftest import outcome


@pytest.mark.parametrize("path", ["$export", "Patient/$export"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_kick_off_answers_202_with_an_absolute_status_url(alice, fhir_master, path, method):
    r = kick_off(fhir_master, path, method=method,
                 parameters=parameters(_type="Patient") if method == "POST" else None, status=202)
    assert r.status_url.startswith(f"{BASE}/bulk/")


def test_group_kick_off_by_its_provider(provider_user, client, run_worker):
    from tests.fhir.conftest import Fhir

    _, provider_id, doctor = provider_user("dr.kick")
    exp = export_all(Fhir(client, doctor.token), run_worker, f"Group/{provider_id}/$export")
    assert exp.manifest["output"] == []  # nobody has shared anything with this provider yet
    assert exp.manifest["request"] == f"{BASE}/Group/{provider_id}/$export"


def test_another_providers_group_is_not_found(provider_user, client):
    from tests.fhir.conftest import Fhir

    _, _mine, doctor = provider_user("dr.mine")
    _, theirs, _ = provider_user("dr.theirs")
    outcome(kick_off(Fhir(client, doctor.token), f"Group/{theirs}/$export", status=404), 404)


def test_a_plain_patient_cannot_export_a_group(alice, provider_user):
    _, provider_id, _ = provider_user("dr.group")
    outcome(kick_off(alice.fhir, f"Group/{provider_id}/$export", status=404), 404)


def test_without_respond_async_is_400(fhir_master):
    r = fhir_master.get("$export", headers={"Accept": "application/fhir+json"})
    outcome(r, 400)


def test_without_credentials_is_401(anonymous):
    outcome(kick_off(anonymous, status=401), 401)


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson",
                                 "application/fhir ndjson"])  # an unencoded "+" in a URL is a space
def test_output_format_spellings(fhir_master, fmt):
    kick_off(fhir_master, params={"_outputFormat": fmt})


def test_output_format_in_a_post_body(fhir_master):
    kick_off(fhir_master, method="POST", parameters=parameters(_outputFormat="application/ndjson"))


@pytest.mark.parametrize("fmt", ["text/csv", "application/fhir+json", ""])
def test_unsupported_output_format_is_400(fhir_master, fmt):
    outcome(kick_off(fhir_master, params={"_outputFormat": fmt}, status=400), 400)


def test_unsupported_parameter_is_400_unless_lenient(fhir_master, run_worker, alice):
    outcome(kick_off(fhir_master, params={"_bogus": "1"}, status=400), 400)
    outcome(kick_off(fhir_master, params={"includeAssociatedData": "LatestProvenanceResources"}, status=400), 400)
    exp = kick_off(fhir_master, params={"_bogus": "1", "_type": "Patient"},
                   headers={"Prefer": "respond-async, handling=lenient"})
    run_worker()
    assert {o["type"] for o in exp.complete()["output"]} == {"Patient"}


def test_unknown_type_is_400_unless_lenient(fhir_master, run_worker, alice):
    outcome(kick_off(fhir_master, params={"_type": "Patient,Encounter"}, status=400), 400)
    exp = kick_off(fhir_master, params={"_type": "Patient,Encounter"},
                   headers={"Prefer": "respond-async; handling=lenient"})
    run_worker()
    assert {o["type"] for o in exp.complete()["output"]} == {"Patient"}
    # Only unknown types, leniently: nothing is exported (never everything).
    exp = kick_off(fhir_master, params={"_type": "Encounter"}, headers={"Prefer": "respond-async; handling=lenient"})
    run_worker()
    assert exp.complete()["output"] == []


def test_bad_since_and_type_filter_are_400(fhir_master):
    outcome(kick_off(fhir_master, params={"_since": "yesterday"}, status=400), 400)
    outcome(kick_off(fhir_master, params={"_typeFilter": "Observation"}, status=400), 400)
    outcome(kick_off(fhir_master, params={"_typeFilter": "Observation?nonsense=1"}, status=400), 400)
    outcome(kick_off(fhir_master, params={"_typeFilter": "Encounter?status=finished"}, status=400), 400)


def test_post_body_must_be_parameters(fhir_master):
    outcome(kick_off(fhir_master, method="POST", parameters={"resourceType": "Patient"}, status=400), 400)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_type_limits_the_export(alice, fhir_master, run_worker, method):
    kw = {"parameters": parameters(_type=["Patient", "Immunization"])} if method == "POST" else \
        {"params": {"_type": "Patient,Immunization"}}
    exp = export_all(fhir_master, run_worker, method=method, **kw)
    got = exp.resources()
    assert set(got) == {"Patient", "Immunization"}
    assert sorted(r["id"] for r in got["Immunization"]) == sorted(alice.record["Immunization"])
    for rs in got.values():
        assert_valid_lines(rs)


def test_type_filter_selects_within_a_type(alice, fhir_master, run_worker):
    exp = export_all(fhir_master, run_worker, params={
        "_type": "Observation,Immunization", "_typeFilter": "Observation?code=http://loinc.org|2339-0"})
    got = exp.resources()
    assert got["Observation"] and all(
        any(c["code"] == "2339-0" for c in r["code"]["coding"]) for r in got["Observation"])
    assert len(got["Observation"]) < len(alice.record["Observation"])
    assert len(got["Immunization"]) == len(alice.record["Immunization"])  # a type without a filter: all of it


def test_type_filters_for_one_type_are_ored(alice, fhir_master, run_worker):
    exp = export_all(fhir_master, run_worker, method="POST", parameters=parameters(
        _type="Observation",
        _typeFilter=["Observation?code=http://loinc.org|2339-0", "Observation?code=http://loinc.org|4548-4"]))
    codes = {c["code"] for r in exp.resources()["Observation"] for c in r["code"]["coding"]}
    assert codes == {"2339-0", "4548-4"}


def test_elements_subset_every_line_and_tag_it(alice, fhir_master, run_worker):
    exp = export_all(fhir_master, run_worker, params={"_type": "Observation,Patient",
                                                      "_elements": "Observation.code,birthDate"})
    got = exp.resources()
    for obs in got["Observation"]:
        assert "valueQuantity" not in obs and "code" in obs and "status" in obs  # status is mandatory
        assert any(t["code"] == "SUBSETTED" for t in obs["meta"]["tag"])
    for patient in got["Patient"]:
        assert "birthDate" in patient and "name" not in patient
    for rs in got.values():
        assert_valid_lines(rs)


def test_elements_for_another_type_leave_a_type_whole(alice, fhir_master, run_worker):
    exp = export_all(fhir_master, run_worker, params={"_type": "Immunization", "_elements": "Observation.code"})
    for imm in exp.resources()["Immunization"]:
        assert "occurrenceDateTime" in imm and "SUBSETTED" not in str(imm.get("meta"))


def test_request_is_the_kick_off_url(fhir_master, run_worker):
    exp = export_all(fhir_master, run_worker, params={"_type": "Patient"})
    assert exp.manifest["request"] == f"{BASE}/$export?_type=Patient"
