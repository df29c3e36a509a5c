"""Code tables (mappings/codes/*.csv) loaded once at import, and CodeableConcept helpers.

Matching is on a normalized name (case-folded, inner whitespace collapsed) against each row's names.
A name that matches no row stays a text-only CodeableConcept: a PHR holds what the patient typed, and a
guessed code would be a clinical claim nobody made (hl7.org/fhir/R4/datatypes.html#CodeableConcept allows
text without coding).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
GTS_ABBREVIATION = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def normalize(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _rows(filename: str) -> list[dict[str, str]]:
    raw = resources.files("mappings.codes").joinpath(filename).read_text(encoding="utf-8")
    lines = [line for line in raw.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    display: str
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


class CodeTable:
    """One code table: names -> concepts, and (system, code) -> concept."""

    def __init__(self, filename: str, system: str | None = None):
        self.filename = filename
        self.by_name: dict[str, list[Concept]] = {}
        self.by_code: dict[tuple[str, str], Concept] = {}
        for row in _rows(filename):
            extra = {k: v for k, v in row.items() if k not in ("system", "code", "display", "names")}
            concept = Concept(row.get("system") or system or "", row["code"], row.get("display", ""), extra)
            self.by_code.setdefault((concept.system, concept.code), concept)
            for name in row["names"].split("|"):
                self.by_name.setdefault(normalize(name), []).append(concept)

    def lookup(self, text: str | None) -> Concept | None:
        if not text:
            return None
        found = self.by_name.get(normalize(text))
        return found[0] if found else None

    def candidates(self, text: str | None) -> list[Concept]:
        return list(self.by_name.get(normalize(text), [])) if text else []

    def from_codings(self, codings: list[dict[str, Any]] | None) -> Concept | None:
        for coding in codings or ():
            concept = self.by_code.get((coding.get("system", ""), coding.get("code", "")))
            if concept:
                return concept
        return None


VACCINES = CodeTable("vaccines.csv", CVX)
ALLERGENS = CodeTable("allergens.csv")
MEDICATIONS = CodeTable("medications.csv", RXNORM)
LAB_TESTS = CodeTable("lab_tests.csv", LOINC)
DOCUMENT_TYPES = CodeTable("document_types.csv", LOINC)
BLOOD_GROUPS = CodeTable("blood_groups.csv", SNOMED)
UCUM_UNITS = CodeTable("ucum_units.csv", UCUM)
RELATIONSHIPS = CodeTable("relationships.csv", V3_ROLE_CODE)
TIMINGS = CodeTable("timing.csv", GTS_ABBREVIATION)
GENDERS = CodeTable("gender.csv", "http://hl7.org/fhir/administrative-gender")
AUDIT_ACTIONS = _rows("audit_actions.csv")


def codeable(text: str | None, concept: Concept | None) -> dict[str, Any] | None:
    """A CodeableConcept whose text is exactly what the PHR holds, with a coding when we know one."""
    if text is None or text == "":
        return None
    result: dict[str, Any] = {}
    if concept is not None:
        result["coding"] = [concept.coding()]
    result["text"] = text
    return result


def concept_text(concept: dict[str, Any] | None) -> str | None:
    """The human text of a CodeableConcept: its text, else the first coding's display, else its code."""
    if not concept:
        return None
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding", ()):
        if coding.get("display"):
            return coding["display"]
    for coding in concept.get("coding", ()):
        if coding.get("code"):
            return coding["code"]
    return None


def has_coding(concept: dict[str, Any] | None, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in (concept or {}).get("coding", ()))


def ucum_code(unit: str | None) -> str | None:
    """The UCUM code for a unit as people write it ("mg/dl" -> "mg/dL"), or None when not UCUM-known."""
    concept = UCUM_UNITS.lookup(unit)
    if concept is not None:
        return concept.code
    # Exact UCUM codes are case-sensitive ("mg/dL"); accept a code spelled exactly as in the table.
    return next((code for (_, code) in UCUM_UNITS.by_code if code == unit), None)


def first_code(concept: dict[str, Any] | None, system: str | None = None) -> str | None:
    """The code of the first coding (from `system`, when given) of a CodeableConcept."""
    for coding in (concept or {}).get("coding", ()):
        if system is None or coding.get("system") == system:
            return coding.get("code")
    return None
