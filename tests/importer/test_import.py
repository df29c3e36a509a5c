"""The importer on hand-made Bundles and NDJSON (gateway/services/importer/, `phr-gateway import`):
reference resolution, what is skipped and why, bad files, the owner, and importing the same patient twice.
Every test runs on SQLite and PostgreSQL (tests/conftest.py)."""
from __future__ import annotations

import json

import orjson
import pytest
from sqlalchemy import select

from gateway.errors import InvalidInput, NotFound
from gateway.models import (
    Allergy,
    AuditLog,
    EmergencyContact,
    FileBlob,
    LabResult,
    MedicalDocument,
    Medication,
    Profile,
    Provider,
    StoredFile,
    Vaccination,
)
from gateway.services.importer import Importer, ImportFileError, owner_by_username, parse_source
from tests.importer.conftest import b64, bundle, count, entry, fhir_body, last_json

LOINC, SNOMED, CVX = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/cvx"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                      "code": "vital-signs"}]}
NOTE = "Seen for a cough.\nNo fever. — Dr. Łukasz\n".encode()


def patient(mrn: str = "MRN-1", **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": mrn}],
            "name": [{"family": "Nuñez", "given": ["Zoë"]}], "gender": "female", "birthDate": "1984-03-07", **extra}


def allergy(subject: str, **extra) -> dict:
    return {"resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": SNOMED, "code": "91935009", "display": "Allergy to peanut"}],
                     "text": "Peanut"},
            "patient": {"reference": subject}, "recordedDate": "2020-05-01",
            "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}], **extra}


def immunization(subject: str, **extra) -> dict:
    return {"resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": CVX, "code": "03", "display": "MMR"}]},
            "patient": {"reference": subject}, "occurrenceDateTime": "2019-10-01", **extra}


def lab(subject: str, **extra) -> dict:
    return {"resourceType": "Observation", "status": "final", "category": [LAB],
            "code": {"coding": [{"system": LOINC, "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}]},
            "subject": {"reference": subject}, "effectiveDateTime": "2025-09-20T08:30:00Z",
            "valueQuantity": {"value": 98, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            **extra}


def document(subject: str, **attachment) -> dict:
    return {"resourceType": "DocumentReference", "status": "current",
            "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
            "subject": {"reference": subject}, "date": "2025-09-20T09:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", **attachment}}]}


def run(db_session, owner, *sources):
    importer = Importer(db_session, owner)
    reports = [importer.import_source(parse_source(name, text)) for name, text in sources]
    db_session.flush()
    return importer, reports


def as_source(name: str, document: dict | list) -> tuple[str, str]:
    if isinstance(document, list):
        return name, "\n".join(json.dumps(r) for r in document) + "\n"
    return name, json.dumps(document)


# ---- references -------------------------------------------------------------------------------------------


def test_urn_uuid_references_resolve_to_the_new_records(db_session, owner):
    p, doc, dr, enc = ("urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0001", "urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0002",
                       "urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0003", "urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0004")
    source = bundle(
        # Out of order on purpose: the importer writes the directory, then patients, then documents.
        entry("urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0010",
              lab(p, derivedFrom=[{"reference": doc}], encounter={"reference": enc})),
        entry("urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0011",
              immunization(p, performer=[{"actor": {"reference": dr}}])),
        entry("urn:uuid:0c3a4b56-1f1e-4c1a-9a51-6d8b8e0e0012", allergy(p)),
        entry(doc, document(p, data=b64(NOTE), title="Visit note")),
        entry(enc, {"resourceType": "Encounter", "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": p}}),
        entry(p, patient()),
        entry(dr, {"resourceType": "Practitioner", "name": [{"family": "Łukasz", "given": ["Anna"]}],
                   "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999912345"}]}),
    )
    _, (report,) = run(db_session, owner, as_source("visit.json", source))

    assert report.imported == {"Patient": 1, "Observation": 1, "Immunization": 1, "AllergyIntolerance": 1,
                               "DocumentReference": 1, "Practitioner": 1}
    assert report.skipped == {"Encounter": {"not mapped: the PHR has no record for Encounter": 1}}
    (pid,) = report.profiles
    profile = db_session.get(Profile, pid)
    assert profile.user_id == owner.object_id and profile.full_name == "Zoë Nuñez"
    doc_row = db_session.scalar(select(MedicalDocument).where(MedicalDocument.profile_id == pid))
    lab_row = db_session.scalar(select(LabResult).where(LabResult.profile_id == pid))
    vax = db_session.scalar(select(Vaccination).where(Vaccination.profile_id == pid))
    provider = db_session.scalar(select(Provider).where(Provider.system_id == "9999912345"))
    assert lab_row.attachment_id == doc_row.object_id
    assert vax.performer_id == provider.object_id
    assert db_session.scalar(select(Allergy.substance).where(Allergy.profile_id == pid)) == "Peanut"

    obs = fhir_body(db_session, "Observation", lab_row.object_id)
    assert obs["subject"] == {"reference": f"Patient/{pid}"}
    assert obs["derivedFrom"] == [{"reference": f"DocumentReference/{doc_row.object_id}"}]
    assert "encounter" not in obs  # the Encounter was not imported: no reference into the source system
    assert fhir_body(db_session, "Immunization", vax.object_id)["performer"] == [
        {"actor": {"reference": f"Practitioner/{provider.object_id}"}}]
    # The inline attachment became an uploaded file, served as our Binary; no copy of the bytes in `_fhir`.
    stored = db_session.get(StoredFile, doc_row.file_name)
    assert stored.created_by_id == owner.object_id and stored.document_id == doc_row.object_id
    assert db_session.scalar(select(FileBlob.data).where(FileBlob.name == stored.name)) == NOTE
    attachment = fhir_body(db_session, "DocumentReference", doc_row.object_id)["content"][0]["attachment"]
    assert attachment["url"].endswith(f"/Binary/{doc_row.object_id}-v1") and attachment["size"] == len(NOTE)
    assert attachment["title"] == "Visit note" and "data" not in orjson.dumps(doc_row.fhir or {}).decode()


def test_type_id_references_and_ndjson_across_files(db_session, owner):
    """A bulk export: one NDJSON file per type, `Type/id` references between them, Patients read first
    whatever order the files come in (the CLI sorts them; here they are imported in that order)."""
    base = "https://ehr.example.org/fhir"
    collection = bundle({"fullUrl": f"{base}/Patient/p1", "resource": {**patient(), "id": "p1"}}, kind="collection")
    vaccines = [immunization("Patient/p1", id="i1"), immunization(f"{base}/Patient/p1", id="i2"),
                immunization("Patient/unknown", id="i3")]
    importer, (first, second) = run(db_session, owner, as_source("Patient.json", collection),
                                    as_source("Immunization.ndjson", vaccines))
    (pid,) = first.profiles
    assert second.imported == {"Immunization": 2}
    assert second.skipped == {"Immunization": {"its Patient is not in this import": 1}}
    assert count(db_session, Vaccination, Vaccination.profile_id == pid) == 2
    assert importer.targets["Patient/p1"].id == pid


def test_ndjson_is_recognised_without_its_suffix_and_blank_lines_are_ignored():
    text = json.dumps(patient()) + "\n\n" + json.dumps(immunization("Patient/x")) + "\n"
    assert [e.resource_type for e in parse_source("export.txt", text).entries] == ["Patient", "Immunization"]


# ---- skipped, with reasons --------------------------------------------------------------------------------


def test_unknown_types_and_non_laboratory_observations_are_skipped_with_the_reason(db_session, owner):
    p = "urn:uuid:7d1f0000-0000-4000-8000-000000000001"
    source = bundle(
        entry(p, patient()),
        entry("urn:uuid:7d1f0000-0000-4000-8000-000000000002",
              {"resourceType": "Condition", "subject": {"reference": p},
               "code": {"coding": [{"system": SNOMED, "code": "444814009"}]}}),
        entry("urn:uuid:7d1f0000-0000-4000-8000-000000000003",
              {"resourceType": "Claim", "status": "active", "use": "claim", "patient": {"reference": p}}),
        entry("urn:uuid:7d1f0000-0000-4000-8000-000000000004",
              {**lab(p), "category": [VITALS], "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}}),
        entry("urn:uuid:7d1f0000-0000-4000-8000-000000000005",
              {"resourceType": "Consent", "status": "active", "scope": {"text": "privacy"},
               "category": [{"text": "x"}], "patient": {"reference": p}}),
        {"request": {"method": "DELETE", "url": "Observation/abc"}},
    )
    _, (report,) = run(db_session, owner, as_source("mixed.json", source))
    assert report.imported == {"Patient": 1}
    assert report.skipped == {
        "Condition": {"not mapped: the PHR has no record for Condition": 1},
        "Claim": {"not mapped: the PHR has no record for Claim": 1},
        "Observation": {"category vital-signs: only laboratory Observations are kept": 1,
                        "no resource in the entry (request DELETE Observation/abc)": 1},
        "Consent": {"not imported: sharing is granted by the owner in the PHR, not copied from another system": 1},
    }
    assert count(db_session, LabResult, LabResult.profile_id == report.profiles[0]) == 0


def test_invalid_resources_are_skipped_with_the_reason_and_nothing_of_them_is_written(db_session, owner):
    p = "urn:uuid:9e2b0000-0000-4000-8000-000000000001"
    bad_patient = "urn:uuid:9e2b0000-0000-4000-8000-000000000002"
    source = bundle(
        entry(p, patient()),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000003", immunization(p, status="given")),  # not R4
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000004", lab(p, effectiveDateTime="20th of May")),
        # valid R4 without a reaction: kept (the PHR's severity and reaction are optional)
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000006",
              {k: v for k, v in allergy(p).items() if k != "reaction"}),
        # valid R4, but an allergy to nothing named is no PHR Allergy (substance is required)
        entry("urn:uuid:9e2b0000-0000-4000-8000-00000000000a",
              {k: v for k, v in allergy(p).items() if k != "code"}),
        entry(bad_patient, patient("MRN-2", birthDate="1984-13-45")),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000007", immunization(bad_patient)),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000008",
              document(p, url="https://ehr.example.org/files/123.pdf")),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000009", document(p, data="not base64!")),
    )
    audit_before = count(db_session, AuditLog)
    files_before = count(db_session, StoredFile)
    _, (report,) = run(db_session, owner, as_source("bad.json", source))
    assert report.imported == {"Patient": 1, "AllergyIntolerance": 1}
    skipped = report.skipped
    invalid_vaccine, patient_skipped = skipped["Immunization"]
    assert invalid_vaccine.startswith("invalid R4: ") and "status" in invalid_vaccine
    assert patient_skipped == "its Patient was skipped"
    ((invalid_lab, _),) = skipped["Observation"].items()
    assert invalid_lab.startswith("invalid R4: ") and "effectiveDateTime" in invalid_lab
    ((invalid_patient, _),) = skipped["Patient"].items()
    assert invalid_patient.startswith("invalid R4: ") and "birthDate" in invalid_patient
    assert skipped["AllergyIntolerance"] == {"not storable as Allergy: substance is required": 1}
    url_only, bad_data = skipped["DocumentReference"]
    assert url_only == "attachment has only a url; files are not fetched"
    assert bad_data.startswith("invalid R4: content[0].attachment.data: Base64 decoding error")
    (pid,) = report.profiles
    assert count(db_session, Allergy, Allergy.profile_id == pid) == 1  # only the one without a reaction
    for model in (Vaccination, LabResult, MedicalDocument):
        assert count(db_session, model, model.profile_id == pid) == 0
    assert count(db_session, Profile, Profile.user_id == owner.object_id) == 1
    assert count(db_session, StoredFile) == files_before  # refused documents leave no file behind
    assert count(db_session, AuditLog) == audit_before + 2  # the Profile's and the Allergy's creates only


def test_attachments_a_browser_would_run_are_skipped_and_safe_ones_kept_normalised(db_session, owner):
    p = "urn:uuid:9e2b0000-0000-4000-8000-000000000101"
    page = b"<html><script>alert(document.cookie)</script></html>"
    source = bundle(
        entry(p, patient()),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000102",
              document(p, contentType="text/xsl", data=b64(b"an XSLT sheet"), title="style")),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000103", document(p, data=b64(page), title="note")),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000104",
              document(p, contentType="image/png", data=b64(page), title="scan")),
        entry("urn:uuid:9e2b0000-0000-4000-8000-000000000105",
              document(p, contentType="Text/Plain; charset=UTF-8", data=b64(NOTE), title="Visit note")),
    )
    files_before = count(db_session, StoredFile)
    _, (report,) = run(db_session, owner, as_source("attachments.json", source))
    assert report.imported == {"Patient": 1, "DocumentReference": 1}
    assert report.skipped["DocumentReference"] == {
        "not storable as MedicalDocument: File upload of type text/xsl is disabled: a health record holds PDF, "
        "images, text, CSV, JSON, DICOM, audio, video and office documents.": 1,
        "not storable as MedicalDocument: The file's content is markup (HTML, SVG or XML), which is not "
        "accepted as any type.": 1,
        "not storable as MedicalDocument: The file's content is not image/png.": 1,
    }
    assert count(db_session, StoredFile) == files_before + 1
    (kept,) = db_session.scalars(select(MedicalDocument.file_name).where(
        MedicalDocument.profile_id == report.profiles[0]))
    assert db_session.get(StoredFile, kept).content_type == "text/plain"


# ---- patients: contacts, blood group, owner, second import ------------------------------------------------


def test_contacts_become_emergency_contacts_and_a_blood_group_sets_the_profile(db_session, owner):
    p = "urn:uuid:5a5a0000-0000-4000-8000-000000000001"
    contact = {"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                             "code": "C"}]}, {"text": "mother"}],
               "name": {"family": "Nuñez", "given": ["María José"]},
               "telecom": [{"system": "phone", "value": "+34 600 000 000"}]}
    no_phone = {"relationship": [{"text": "brother"}], "name": {"text": "Pablo"}}
    blood = {"resourceType": "Observation", "status": "final", "category": [LAB],
             "code": {"coding": [{"system": LOINC, "code": "882-1"}]}, "subject": {"reference": p},
             "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "278149003"}], "text": "A+"}}
    source = bundle(entry(p, patient(contact=[contact, no_phone])),
                    entry("urn:uuid:5a5a0000-0000-4000-8000-000000000002", blood))
    _, (report,) = run(db_session, owner, as_source("family.json", source))
    (pid,) = report.profiles
    assert report.imported == {"Patient": 1, "Patient.contact": 1, "Observation": 1}
    assert report.skipped == {"Patient.contact": {"not storable as EmergencyContact: phone is required": 1}}
    (ec,) = db_session.scalars(select(EmergencyContact).where(EmergencyContact.profile_id == pid))
    assert (ec.name, ec.relationship, ec.phone) == ("María José Nuñez", "mother", "+34 600 000 000")
    assert db_session.get(Profile, pid).blood_type == "A+"
    assert fhir_body(db_session, "Observation", f"{pid}-blood-group")["valueCodeableConcept"]["text"] == "A+"
    assert fhir_body(db_session, "Patient", pid)["contact"][0]["telecom"] == [
        {"system": "phone", "value": "+34 600 000 000"}]
    assert count(db_session, LabResult, LabResult.profile_id == pid) == 0


def test_the_owner_is_required_and_must_exist(db_session, run_cli, tmp_path):
    with pytest.raises(InvalidInput, match="owner is required"):
        owner_by_username(db_session, None)
    with pytest.raises(NotFound):
        owner_by_username(db_session, "nobody")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(bundle(entry("urn:uuid:1", patient()))))
    before = count(db_session, Profile)
    for args in ([str(path)], ["--owner", "nobody", str(path)]):
        result = run_cli("import", *args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert "nothing was imported" in result.stderr
    assert "--owner USERNAME" in run_cli("import", str(path)).stderr
    assert count(db_session, Profile) == before


def test_a_second_import_of_the_same_patient_makes_no_duplicates(db_session, owner, run_cli, tmp_path):
    p = "urn:uuid:2b2b0000-0000-4000-8000-000000000001"
    path = tmp_path / "again.json"
    path.write_text(json.dumps(bundle(entry(p, patient()), entry("urn:uuid:2b2b0000-0000-4000-8000-000000000002",
                                                                 immunization(p)))))
    first = last_json(run_cli("import", "--owner", "ann", str(path)).stdout)
    (pid,) = first["profiles"]
    result = run_cli("import", "--owner", "ann", str(path))
    assert result.exit_code == 0, result.stderr
    second = last_json(result.stdout)
    assert second == {"imported": {}, "profiles": [], "skipped": {
        "Patient": {"already imported: a Profile of this owner has the same identifier": 1},
        "Immunization": {f"already imported: its Patient is Profile {pid}": 1}}}
    assert count(db_session, Profile, Profile.user_id == owner.object_id) == 1
    assert count(db_session, Vaccination, Vaccination.profile_id == pid) == 1
    # Another owner (say the patient herself, after her caregiver) gets her own copy.
    from gateway.services.users import UserService

    UserService(db_session).create_user("zoe", "pw-123456")
    db_session.commit()
    third = last_json(run_cli("import", "--owner", "zoe", str(path)).stdout)
    assert third["imported"] == {"Immunization": 1, "Patient": 1}


# ---- the CLI: output, bad files, one transaction per file -------------------------------------------------


def test_cli_prints_counts_per_file_and_the_totals_as_json_last(db_session, owner, run_cli, tmp_path):
    p = "urn:uuid:3c3c0000-0000-4000-8000-000000000001"
    (tmp_path / "a.json").write_text(json.dumps(bundle(
        entry(p, patient()), entry("urn:uuid:3c3c0000-0000-4000-8000-000000000002", immunization(p)),
        entry("urn:uuid:3c3c0000-0000-4000-8000-000000000003",
              {"resourceType": "Encounter", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}}))))
    (tmp_path / "b.ndjson").write_text(json.dumps(patient("MRN-9")) + "\n")
    result = run_cli("import", "--owner", "ann", str(tmp_path / "b.ndjson"), str(tmp_path / "a.json"))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{tmp_path / 'b.ndjson'}: 1 resources"
    assert f"{tmp_path / 'a.json'}: 3 resources" in lines
    assert "  imported  Immunization                  1" in lines
    assert "  skipped   Encounter                     1  not mapped: the PHR has no record for Encounter" in lines
    assert lines[-2] == "  skipped   Encounter                     1  not mapped: the PHR has no record for Encounter"
    assert "total (2 files):" in lines
    summary = last_json(result.stdout)
    assert summary["imported"] == {"Immunization": 1, "Patient": 2}
    assert summary["skipped"] == {"Encounter": {"not mapped: the PHR has no record for Encounter": 1}}
    assert count(db_session, Profile, Profile.object_id.in_(summary["profiles"])) == 2


@pytest.mark.parametrize("name, content, message", [
    ("broken.json", '{"resourceType": "Bundle", "type": "collection", "entry": [', "not valid JSON"),
    ("history.json", json.dumps({"resourceType": "Bundle", "type": "history", "entry": []}), "type 'history'"),
    ("list.json", "[1, 2]", "not a FHIR resource or Bundle"),
    ("lines.ndjson", json.dumps(patient()) + "\n{oops\n", "line 2 is not valid JSON"),
    ("empty.ndjson", "", "the file is empty"),
])
def test_a_bad_file_fails_cleanly_and_nothing_is_written(db_session, owner, run_cli, tmp_path, name, content,
                                                         message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bundle(entry("urn:uuid:4d4d0000-0000-4000-8000-000000000001", patient()))))
    bad = tmp_path / name
    bad.write_text(content)
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(")):
        parse_source(name, content, ndjson=name.endswith(".ndjson") or None)
    before = (count(db_session, Profile), count(db_session, AuditLog))
    result = run_cli("import", "--owner", "ann", str(good), str(bad))  # the good file is not imported either
    assert result.exit_code == 1
    assert result.stdout == ""
    assert message in result.stderr and "nothing was imported" in result.stderr
    assert (count(db_session, Profile), count(db_session, AuditLog)) == before


def test_a_file_that_fails_while_writing_is_rolled_back_alone(db_session, owner, run_cli, tmp_path, monkeypatch):
    from gateway.services import importer as importer_module

    (tmp_path / "1.json").write_text(json.dumps(bundle(entry("urn:uuid:a", patient("MRN-A")))))
    (tmp_path / "2.json").write_text(json.dumps(bundle(
        entry("urn:uuid:b", patient("MRN-B")), entry("urn:uuid:c", immunization("urn:uuid:b")))))
    original = importer_module.Importer._write

    def failing(self, rt, resource, binaries, report):
        if rt == "Immunization":
            raise RuntimeError("disk full")
        return original(self, rt, resource, binaries, report)

    monkeypatch.setattr(importer_module.Importer, "_write", failing)
    result = run_cli("import", "--owner", "ann", str(tmp_path / "1.json"), str(tmp_path / "2.json"))
    assert result.exit_code == 1
    assert "2.json: import failed, nothing of this file was written: disk full" in result.stderr
    names = set(db_session.scalars(select(Profile.full_name).where(Profile.user_id == owner.object_id)))
    assert names == {"Zoë Nuñez"}  # the first file's patient stays; the second file's is gone
    assert count(db_session, Profile, Profile.user_id == owner.object_id) == 1


def test_imports_write_through_the_one_write_path(db_session, owner):
    """Audit (actor = the owner), versions and the FHIR view all follow, as for any write by the owner."""
    p = "urn:uuid:6e6e0000-0000-4000-8000-000000000001"
    _, (report,) = run(db_session, owner, as_source("x.json", bundle(
        entry(p, patient()), entry("urn:uuid:6e6e0000-0000-4000-8000-000000000002",
                                   {"resourceType": "MedicationStatement", "status": "active",
                                    "medicationCodeableConcept": {"coding": [{
                                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}],
                                        "text": "Metformin 500 mg"},
                                    "subject": {"reference": p}}))))
    (pid,) = report.profiles
    med = db_session.scalar(select(Medication).where(Medication.profile_id == pid))
    assert med.name == "Metformin 500 mg"
    actions = db_session.execute(select(AuditLog.actor_id, AuditLog.entity_type, AuditLog.action)
                                 .where(AuditLog.profile_id == pid)).all()
    assert set(actions) == {(owner.object_id, "Profile", "create"), (owner.object_id, "Medication", "create")}
    statement = fhir_body(db_session, "MedicationStatement", med.object_id)
    assert statement["medicationCodeableConcept"]["coding"][0]["code"] == "860975"
    assert statement["subject"] == {"reference": f"Patient/{pid}"}
