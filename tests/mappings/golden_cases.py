"""Golden pairs under tests/data/mappings/<resource>/ and how to read them.

<case>.native.json + <case>.fhir.json      both directions: to_fhir(native) == fhir and
                                           from_fhir(fhir) == native minus the module's NATIVE_ONLY fields.
in-<case>.fhir.json + in-<case>.native.json FHIR carries more than the columns (codings, identifiers, partial
                                           dates, unmapped elements): from_fhir(fhir) gives native plus
                                           `_fhir`, and to_fhir of that record gives fhir back unchanged.
out-<case>.*.json (+ <case>.kwargs.json)   to_fhir needs caller context (kwargs), e.g. superseded=True or
                                           the profile's emergency contacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mappings import MODULES, MappingContext, patient

# Golden files use this base and "now" (a Consent's expired state depends on it).
GOLDEN_CTX = MappingContext(base_url="http://127.0.0.1:8080/fhir", now=datetime(2026, 12, 1, tzinfo=UTC))

DATA = Path(__file__).resolve().parent.parent / "data" / "mappings"

FOLDERS = {
    "patient": "Patient",
    "allergy-intolerance": "AllergyIntolerance",
    "immunization": "Immunization",
    "medication-statement": "MedicationStatement",
    "observation": "Observation",
    "document-reference": "DocumentReference",
    "consent": "Consent",
    "related-person": "RelatedPerson",
    "practitioner": "Practitioner",
    "organization": "Organization",
    "audit-event": "AuditEvent",
    "blood-group": "Observation",
}


@dataclass(frozen=True)
class Case:
    folder: str
    name: str

    @property
    def kind(self) -> str:
        prefix = self.name.split("-", 1)[0]
        return prefix if prefix in ("in", "out") else "two-way"

    def load(self, suffix: str) -> Any:
        path = DATA / self.folder / f"{self.name}.{suffix}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    @property
    def native(self) -> dict[str, Any]:
        return self.load("native")

    @property
    def fhir(self) -> dict[str, Any]:
        return self.load("fhir")

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.load("kwargs") or {}

    @property
    def module(self):
        return MODULES[FOLDERS[self.folder]]

    def to_fhir(self, record: dict[str, Any], ctx) -> dict[str, Any]:
        if self.folder == "blood-group":
            return patient.blood_group_observation(record, ctx)
        return self.module.to_fhir(record, ctx, **self.kwargs)

    def from_fhir(self, resource: dict[str, Any], ctx) -> dict[str, Any]:
        if self.folder == "blood-group":
            return patient.blood_type_from_observation(resource)
        return self.module.from_fhir(resource, ctx)

    def expected_native(self) -> dict[str, Any]:
        """The native record as from_fhir can know it."""
        native = self.native
        if self.folder == "blood-group":
            return {"objectId": native["objectId"], "bloodType": native["bloodType"]}
        return {k: v for k, v in native.items() if k not in self.module.NATIVE_ONLY}

    def __str__(self) -> str:
        return f"{self.folder}/{self.name}"


def cases() -> list[Case]:
    found = []
    for folder in sorted(FOLDERS):
        for path in sorted((DATA / folder).glob("*.fhir.json")):
            found.append(Case(folder, path.name[: -len(".fhir.json")]))
    return found


def fhir_files() -> list[Path]:
    return sorted(DATA.glob("*/*.fhir.json"))
