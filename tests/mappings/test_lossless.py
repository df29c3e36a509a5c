"""The `_fhir` rule in detail, and the small public helpers around the mappers."""

from __future__ import annotations

from datetime import timedelta

import pytest

import mappings
from conformance.validate import validate_r4
from mappings import binary, consent, document_reference, immunization, patient, related_person
from mappings.native import date_value, fhir_datetime, parse_fhir_datetime

PROFILE = {"__type": "Pointer", "className": "Profile", "objectId": "pRoF1le001"}


def test_partial_dates_read_back_unchanged_and_become_first_instants(ctx):
    resource = {
        "resourceType": "Patient",
        "id": "pRoF1le009",
        "name": [{"text": "A B"}],
        "birthDate": "1985-03",
    }
    record = patient.from_fhir(resource, ctx)
    assert record["birthDate"] == {"__type": "Date", "iso": "1985-03-01T00:00:00.000Z"}
    assert patient.to_fhir(record, ctx) == resource
    # Edited natively: the column wins and the precision is the column's.
    record["birthDate"] = date_value("1985-03-17")
    assert patient.to_fhir(record, ctx)["birthDate"] == "1985-03-17"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1985", "1985-01-01T00:00:00+00:00"),
        ("2020-02-29", "2020-02-29T00:00:00+00:00"),
        ("2018-06-01T10:30:00+02:00", "2018-06-01T08:30:00+00:00"),
        ("2026-11-24T04:12:05.251Z", "2026-11-24T04:12:05.251000+00:00"),
    ],
)
def test_fhir_dates_parse_to_utc_instants(text, expected):
    assert parse_fhir_datetime(text).isoformat() == expected


def test_date_only_entries_stay_dates():
    assert fhir_datetime(date_value("2021-04-12")) == "2021-04-12"
    assert fhir_datetime({"__type": "Date", "iso": "2021-04-12T10:00:00.000Z"}) == "2021-04-12T10:00:00Z"


def test_foreign_extensions_survive_an_edit_of_ours(ctx):
    foreign = {"url": "http://example.org/ext", "valueString": "keep me"}
    resource = immunization.to_fhir(
        {
            "objectId": "vAcCiNe001",
            "profile": PROFILE,
            "vaccineName": "MMR",
            "dateAdministered": date_value("2000-01-01"),
        },
        ctx,
    )
    resource["extension"] = [foreign]
    record = immunization.from_fhir(resource, ctx)
    record["nextDoseDate"] = date_value("2030-01-01")
    served = immunization.to_fhir(record, ctx)
    assert served["extension"][0] == foreign
    assert served["extension"][1]["url"] == ctx.extension_url("next-dose-date")
    assert immunization.from_fhir(served, ctx)["nextDoseDate"] == date_value("2030-01-01")


def test_extra_codings_stay_until_the_name_is_edited(ctx):
    resource = {
        "resourceType": "Immunization",
        "id": "vAcCiNe002",
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {"system": "http://hl7.org/fhir/sid/cvx", "code": "03"},
                {"system": "http://snomed.info/sct", "code": "871831003"},
            ]
        },
        "patient": {"reference": "Patient/pRoF1le001"},
        "occurrenceDateTime": "2001",
    }
    record = immunization.from_fhir(resource, ctx)
    assert record["vaccineName"] == "03"  # no text, no display: the code is the best text there is
    assert immunization.to_fhir(record, ctx) == resource
    record["vaccineName"] = "Varicella"
    assert immunization.to_fhir(record, ctx)["vaccineCode"]["coding"][0]["code"] == "21"


def test_unknown_names_stay_text_only(ctx):
    resource = mappings.to_fhir(
        "Allergy",
        {
            "objectId": "aLLeRgy009",
            "profile": PROFILE,
            "substance": "Dragon fruit",
            "severity": "mild",
            "reaction": "x",
            "isActive": True,
            "recordedAt": date_value("2020"),
        },
        ctx,
    )
    assert resource["code"] == {"text": "Dragon fruit"}
    assert "category" not in resource


def test_a_consent_that_arrived_active_turns_inactive_when_it_expires(ctx):
    share = {
        "objectId": "sHaReAc009",
        "profile": PROFILE,
        "accessLevel": "read",
        "scope": ["labs"],
        "grantee": {"__type": "Pointer", "className": "_User", "objectId": "gRaNtEe001"},
        "createdBy": {"__type": "Pointer", "className": "_User", "objectId": "uSeR000001"},
        "expiresAt": date_value("2027-01-01"),
    }
    resource = consent.to_fhir(share, ctx)
    resource["meta"] = {"tag": [{"system": "http://example.org/tags", "code": "imported"}]}
    record = consent.from_fhir(resource, ctx)
    assert "_fhir" in record  # the tag has no column
    later = type(ctx)(base_url=ctx.base_url, now=ctx.now + timedelta(days=60))
    served = consent.to_fhir(record, later)
    assert served["status"] == "inactive"
    assert served["meta"]["tag"] == resource["meta"]["tag"]


def test_superseded_applies_to_documents_that_arrived_by_fhir(ctx):
    doc = {
        "objectId": "dOcUmEnt09",
        "profile": PROFILE,
        "documentType": "Lab report",
        "title": "t",
        "file": {"__type": "File", "name": "f.pdf"},
        "uploadedAt": date_value("2024-01-01"),
        "isShared": False,
        "version": 1,
    }
    resource = document_reference.to_fhir(doc, ctx)
    resource["docStatus"] = "final"
    record = document_reference.from_fhir(resource, ctx)
    assert document_reference.to_fhir(record, ctx) == resource
    assert document_reference.to_fhir(record, ctx, superseded=True)["status"] == "superseded"
    assert validate_r4(document_reference.to_fhir(record, ctx, superseded=True)) == []


def test_patient_contacts_follow_the_emergency_contacts_when_given(ctx):
    contact = {
        "objectId": "eMeRg00009",
        "profile": PROFILE,
        "name": "Ann Lee",
        "relationship": "sister",
        "phone": "1",
    }
    resource = patient.to_fhir(
        {"objectId": "pRoF1le001", "fullName": "Bo Lee"}, ctx, emergency_contacts=[contact]
    )
    record = patient.from_fhir(resource, ctx)
    assert related_person.contacts_from_patient(resource, ctx) == [
        {"profile": PROFILE, "name": "Ann Lee", "relationship": "sister", "phone": "1"}
    ]
    assert patient.to_fhir(record, ctx)["contact"] == resource["contact"]  # not loaded: kept as received
    changed = dict(contact, phone="2")
    assert (
        patient.to_fhir(record, ctx, emergency_contacts=[changed])["contact"][0]["telecom"][0]["value"] == "2"
    )
    assert "contact" not in patient.to_fhir(record, ctx, emergency_contacts=[])


def test_binary_ids_and_resource(ctx):
    doc = {
        "objectId": "dOcUmEnt01",
        "version": 3,
        "file": {"__type": "File", "name": "a.pdf", "contentType": "application/pdf"},
    }
    assert binary.binary_id(doc) == "dOcUmEnt01-v3"
    assert binary.parse_binary_id("dOcUmEnt01-v3") == ("dOcUmEnt01", 3)
    assert binary.parse_binary_id("dOcUmEnt01") == ("dOcUmEnt01", None)
    resource = binary.to_fhir(doc, ctx, data=b"%PDF-1.7")
    assert resource["data"] == "JVBERi0xLjc=" and resource["contentType"] == "application/pdf"
    assert validate_r4(resource) == []
    assert binary.from_fhir(resource, ctx) == {
        "contentType": "application/pdf",
        "data": b"%PDF-1.7",
        "document": "dOcUmEnt01",
    }


def test_registry_dispatch(ctx):
    org = {"objectId": "pRoV1der02", "name": "Clinic", "kind": "organization"}
    assert mappings.resource_type_for("Provider", org) == "Organization"
    assert mappings.to_fhir("Provider", org, ctx)["resourceType"] == "Organization"
    assert mappings.to_fhir("Provider", dict(org, kind="practitioner"), ctx)["resourceType"] == "Practitioner"
    assert mappings.resource_type_for("HealthDocument") == "DocumentReference"
    assert (
        mappings.from_fhir("Organization", mappings.to_fhir("Provider", org, ctx), ctx)["kind"]
        == "organization"
    )
    for class_name, types in mappings.CLASS_TO_RESOURCE.items():
        for resource_type in types:
            if resource_type != "Binary":
                assert mappings.RESOURCE_TO_CLASS[resource_type] == class_name
    with pytest.raises(KeyError):
        mappings.to_fhir("Nope", {}, ctx)


def test_every_generated_element_is_declared_for_the_lossless_rule():
    """An element a module builds but does not list in ELEMENTS would never be regenerated after an edit."""
    from mappings import (
        allergy_intolerance,
        audit_event,
        medication_statement,
        observation,
        organization,
        practitioner,
    )
    from mappings.lossless import _group_of

    samples = {
        allergy_intolerance: {
            "profile": PROFILE,
            "substance": "Peanut",
            "severity": "severe",
            "reaction": "x",
            "isActive": True,
            "recordedAt": date_value("2020"),
            "onsetDate": date_value("2019"),
            "notes": "n",
        },
        immunization: {
            "profile": PROFILE,
            "vaccineName": "MMR",
            "dateAdministered": date_value("2020"),
            "dose": "1",
            "lotNumber": "l",
            "provider": "p",
            "nextDoseDate": date_value("2021"),
            "proofDocument": {"__type": "Pointer", "className": "MedicalDocument", "objectId": "d"},
        },
        medication_statement: {
            "profile": PROFILE,
            "name": "x",
            "dose": "5 mg",
            "frequency": "daily",
            "instructions": "i",
            "active": True,
            "startDate": date_value("2020"),
        },
        observation: {
            "profile": PROFILE,
            "testName": "Glucose",
            "value": 1,
            "units": "mg/dL",
            "referenceRange": "1-2",
            "date": date_value("2020"),
            "attachment": {"__type": "Pointer", "className": "MedicalDocument", "objectId": "d"},
        },
        practitioner: {"name": "A B", "systemId": "1", "contact": {"phone": "1", "address": "a"}},
        organization: {"name": "A", "systemId": "1", "contact": {"phone": "1", "address": "a"}},
        audit_event: {
            "actor": PROFILE,
            "entityType": "Allergy",
            "entityId": "x",
            "action": "read",
            "summary": "s",
            "createdAt": "2020-01-01T00:00:00.000Z",
            "profile": PROFILE,
        },
    }
    for module, record in samples.items():
        choices = tuple(k[:-3] for k in module.ELEMENTS if k.endswith("[x]"))
        built = module.to_fhir(record)
        for key in built:
            if key not in ("resourceType", "id", "meta", "extension"):
                assert _group_of(key, choices) in module.ELEMENTS, (module.__name__, key)


def test_json_copy_is_a_deep_copy_of_json_data():
    from mappings.lossless import json_copy

    original = {"a": [{"b": [1, 2.5, "x", None, True]}, {"c": {"d": []}}], "e": "f"}
    copied = json_copy(original)
    assert copied == original
    copied["a"][0]["b"].append(3)
    copied["a"][1]["c"]["d"].append("g")
    copied["e"] = "changed"
    assert original == {"a": [{"b": [1, 2.5, "x", None, True]}, {"c": {"d": []}}], "e": "f"}


def test_what_is_kept_does_not_change_with_the_resource_received(ctx):
    resource = {"resourceType": "Immunization", "id": "vAcCiNe003", "status": "completed",
                "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"},
                                           {"system": "http://snomed.info/sct", "code": "871831003"}]},
                "patient": {"reference": "Patient/pRoF1le001"}, "occurrenceDateTime": "2001",
                "meta": {"tag": [{"code": "kept"}]}}
    record = immunization.from_fhir(resource, ctx)
    resource["vaccineCode"]["coding"][1]["code"] = "changed afterwards"
    resource["meta"]["tag"].append({"code": "added afterwards"})
    assert record["_fhir"]["vaccineCode"]["coding"][1]["code"] == "871831003"
    assert record["_fhir"]["meta"] == {"tag": [{"code": "kept"}]}
