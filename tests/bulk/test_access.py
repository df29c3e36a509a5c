"""Exports show exactly what the asker may read (DESIGN.md 'Who may do what'; SMART.md: "Only what the
client may see"): a provider's Group is the patients who granted it access, and of them only the granted
categories; a patient's Patient-level export is their own compartment. Binary travels as DocumentReference."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.bulk.conftest import assert_valid_lines, export_all
from tests.conftest import pointer
from tests.fhir.conftest import Fhir, load_record
from tests.native.conftest import ok

#: SharedAccess scope -> the FHIR types it covers (DESIGN.md).
COVERS = {"labs": {"Observation"}, "allergies": {"AllergyIntolerance"}, "immunizations": {"Immunization"},
          "medications": {"MedicationStatement"}, "documents": {"DocumentReference"}, "contacts": {"RelatedPerson"}}


def _iso(delta: timedelta) -> dict[str, str]:
    when = datetime.now(UTC) + delta
    return {"__type": "Date", "iso": when.strftime("%Y-%m-%dT%H:%M:%S.000Z")}


def _subject(resource: dict) -> str | None:
    """The Patient id a compartment resource points to."""
    if resource["resourceType"] == "Patient":
        return resource["id"]
    for key in ("subject", "patient", "beneficiary"):
        if key in resource:
            return resource[key]["reference"].split("/")[-1]
    if resource["resourceType"] == "Consent":
        return resource["patient"]["reference"].split("/")[-1]
    return None


@pytest.fixture
def clinic(person, provider_user, share, client):
    """A provider; Alice shares labs + allergies with it, Bob shared immunizations but revoked, Carol and
    Dave never shared, Erin's grant has expired."""
    _, provider_id, doctor = provider_user("dr.clinic")
    people = {name: load_record(person(name), family=name.title(), given="Test", seed=i, mrn=f"MRN-{name}")
              for i, name in enumerate(["alice", "bob", "carol", "erin"])}
    to_provider = {"provider": pointer("Provider", provider_id)}
    share(people["alice"].parse, people["alice"].patient_id, scope=["labs", "allergies"], **to_provider)
    bob_grant = share(people["bob"].parse, people["bob"].patient_id, scope=["immunizations"], **to_provider)
    ok(people["bob"].parse.put(f"/classes/SharedAccess/{bob_grant}", {"revokedAt": _iso(-timedelta(minutes=1))}))
    share(people["erin"].parse, people["erin"].patient_id, scope=["labs"], expiresAt=_iso(-timedelta(days=1)),
          **to_provider)
    # Carol shares with another provider only.
    _, other, _ = provider_user("dr.other")
    share(people["carol"].parse, people["carol"].patient_id, scope=["labs"], provider=pointer("Provider", other))
    return provider_id, Fhir(client, doctor.token), people


def test_group_export_is_exactly_the_granted_categories_of_the_consenting_patients(clinic, run_worker):
    provider_id, doctor, people = clinic
    alice = people["alice"]
    exp = export_all(doctor, run_worker, f"Group/{provider_id}/$export")
    got = exp.resources()
    for rs in got.values():
        assert_valid_lines(rs)
    assert [p["id"] for p in got["Patient"]] == [alice.patient_id]
    assert sorted(r["id"] for r in got["Observation"]) == sorted(alice.record["Observation"])
    assert sorted(r["id"] for r in got["AllergyIntolerance"]) == sorted(alice.record["AllergyIntolerance"])
    clinical = set(got) - {"Patient", "Consent", "AuditEvent"}
    assert clinical == COVERS["labs"] | COVERS["allergies"]  # no immunizations, medications, documents
    for rt, rs in got.items():
        for r in rs:
            subject = _subject(r)
            assert subject in (alice.patient_id, None), (rt, r["id"], subject)
    others = {people[n].patient_id for n in ("bob", "carol", "erin")}
    assert not any(pid in str(rs) for rs in got.values() for pid in others)


def test_a_grant_revoked_before_kick_off_excludes_that_patient(clinic, run_worker, share):
    provider_id, doctor, people = clinic
    alice = people["alice"]
    [grant] = [g["objectId"] for g in alice.parse.get("/classes/SharedAccess").json["results"]]
    ok(alice.parse.put(f"/classes/SharedAccess/{grant}", {"revokedAt": _iso(-timedelta(seconds=1))}))
    exp = export_all(doctor, run_worker, f"Group/{provider_id}/$export")
    assert exp.manifest["output"] == []  # Alice was the only member: an empty Group exports nothing


def test_patient_level_export_is_the_asker_s_compartment(alice, bob, run_worker):
    exp = export_all(alice.fhir, run_worker, "Patient/$export")
    got = exp.resources()
    assert [p["id"] for p in got["Patient"]] == [alice.patient_id]
    for rt, ids in alice.record.items():
        assert sorted(r["id"] for r in got[rt]) == sorted(ids), rt
    assert bob.patient_id not in str(got)
    assert "Practitioner" not in got and "Organization" not in got  # system level only
    for rs in got.values():
        assert_valid_lines(rs)


def test_system_export_by_a_patient_is_still_only_their_data(alice, bob, run_worker):
    got = export_all(alice.fhir, run_worker, "$export").resources()
    assert [p["id"] for p in got["Patient"]] == [alice.patient_id]
    assert bob.patient_id not in str(got)


def test_patient_parameter_narrows_a_patient_level_export(person, run_worker):
    from tests.bulk.conftest import parameters

    carol = person("carol")
    first = load_record(carol, family="Smith", given="Carol", seed=3)
    record = dict(first.record)
    danny = load_record(carol, family="Smith", given="Danny", seed=4)
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": f"Patient/{danny.patient_id}"}}]}
    got = export_all(carol.fhir, run_worker, "Patient/$export", method="POST", parameters=body).resources()
    assert [p["id"] for p in got["Patient"]] == [danny.patient_id]
    assert not set(record["Observation"]) & {r["id"] for r in got["Observation"]}
    both = export_all(carol.fhir, run_worker, "Patient/$export", method="POST",
                      parameters=parameters(_type="Patient")).resources()
    assert len(both["Patient"]) == 2


def test_binary_travels_as_document_reference(alice, make_document, run_worker, fhir_master):
    doc_id, _ = make_document(alice.parse, alice.patient_id)
    got = export_all(alice.fhir, run_worker, "Patient/$export").resources()
    assert "Binary" not in got
    [doc] = got["DocumentReference"]
    assert doc["id"] == doc_id and doc["content"][0]["attachment"]["url"]
    assert_valid_lines([doc])
    # Asking for Binary gives the documents that carry the files, never Binary lines.
    only = export_all(fhir_master, run_worker, params={"_type": "Binary"}).resources()
    assert set(only) == {"DocumentReference"}
