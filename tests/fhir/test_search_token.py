"""Token search: system|code, |code, code, system|, :not, :text, on codings, identifiers and codes
(hl7.org/fhir/R4/search.html#token)."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import ids, outcome

LOINC = synthea.LOINC


@pytest.fixture
def labs(alice):
    """Alice's 4 labs: glucose, HbA1c, cholesterol, creatinine (one each), plus a text-only one."""
    text_only = {"resourceType": "Observation", "status": "final", "category": [{"coding": [synthea.LAB]}],
                 "code": {"text": "Vitamin D"}, "subject": {"reference": alice.ref},
                 "effectiveDateTime": "2024-01-01", "valueString": "normal"}
    return dict(zip(["glucose", "a1c", "chol", "creat"], alice.record["Observation"]),
                vitd=alice.fhir.create(text_only)["id"])


@pytest.mark.parametrize("value, expect", [
    (f"{LOINC}|2339-0", ["glucose"]),
    ("2339-0", ["glucose"]),
    ("2339-0,4548-4", ["glucose", "a1c"]),
    (f"{LOINC}|", ["glucose", "a1c", "chol", "creat"]),
    ("|2339-0", []),  # no coding without a system has that code
    ("http://snomed.info/sct|2339-0", []),
])
def test_code(alice, labs, value, expect):
    found = alice.fhir.search("Observation", {"code": value})
    assert sorted(ids(found)) == sorted(labs[k] for k in expect)
    assert found["total"] == len(expect)


def test_not_and_text(alice, labs):
    found = alice.fhir.search("Observation", {"code:not": "2339-0"})
    assert sorted(ids(found)) == sorted(v for k, v in labs.items() if k != "glucose")
    assert sorted(ids(alice.fhir.search("Observation", {"code:text": "vitamin"}))) == [labs["vitd"]]
    assert sorted(ids(alice.fhir.search("Observation", {"code:text": "GLUCOSE"}))) == [labs["glucose"]]


def test_repeated_parameters_are_and(alice, labs):
    assert ids(alice.fhir.search("Observation", [("code", "2339-0"), ("code", "4548-4")])) == []
    assert ids(alice.fhir.search("Observation", [("code", "2339-0,4548-4"), ("code:not", "4548-4")])) == [labs["glucose"]]


def test_identifier_gender_status_category(alice, bob):
    assert ids(alice.fhir.search("Patient", {"identifier": f"{synthea.MRN}|MRN-ALICE"})) == [alice.patient_id]
    assert ids(alice.fhir.search("Patient", {"identifier": "MRN-ALICE"})) == [alice.patient_id]
    assert ids(bob.fhir.search("Patient", {"identifier": "MRN-ALICE"})) == []  # not his to find
    gender = alice.fhir.read(alice.ref)["gender"]
    assert ids(alice.fhir.search("Patient", {"gender": gender})) == [alice.patient_id]
    assert ids(alice.fhir.search("Patient", {"gender:not": gender})) == []
    assert len(ids(alice.fhir.search("Observation", {"category": "laboratory"}))) == 4
    assert len(ids(alice.fhir.search("Observation", {"status": "final"}))) == 4
    assert len(ids(alice.fhir.search("Immunization", {"vaccine-code": f"{synthea.CVX}|140"}))) == 1
    assert len(ids(alice.fhir.search("AllergyIntolerance", {"clinical-status": "active"}))) == 1
    assert len(ids(alice.fhir.search("AllergyIntolerance", {"criticality": "high"}))) == 1
    assert len(ids(alice.fhir.search("MedicationStatement", {"status": "active", "code": "6809"}))) == 1


def test_native_edit_reindexes(alice):
    rid = alice.record["AllergyIntolerance"][0]
    alice.parse.put(f"/classes/Allergy/{rid}", {"isActive": False})
    assert ids(alice.fhir.search("AllergyIntolerance", {"clinical-status": "active"})) == []
    assert ids(alice.fhir.search("AllergyIntolerance", {"clinical-status": "inactive"})) == [rid]


def test_bad_modifier(alice):
    outcome(alice.fhir.get("Observation", {"code:exact": "2339-0"}), 400)


def test_escaped_pipes_and_commas_are_part_of_the_code(alice):
    """R4 search 'Escaping': `\\|` and `\\,` are literal; the split on commas must leave `\\|` for the split
    of system|code."""

    def lab(system: str, code: str) -> str:
        return alice.fhir.create({"resourceType": "Observation", "status": "final", "subject": {"reference": alice.ref},
                                  "code": {"coding": [{"system": system, "code": code}]},
                                  "effectiveDateTime": "2024-01-01", "valueString": "x"})["id"]

    piped, plain, commas = lab("urn:x", "a|b"), lab("a", "b"), lab("urn:x", "x,y")
    search = lambda value: sorted(ids(alice.fhir.search("Observation", {"code": value})))  # noqa: E731
    assert search("a\\|b") == [piped]
    assert search("urn:x|a\\|b") == [piped]
    assert search("a|b") == [plain]
    assert search("x\\,y") == [commas]
    assert search("x,y") == []
    assert sorted(search("a\\|b,x\\,y")) == sorted([piped, commas])
    assert search("urn:x|a\\|b\\\\") == []  # an escaped backslash is a backslash, not an escape


TEXTS = [  # (CodeableConcept.text, the codings' displays)
    ("Glucose", ["Glucose [Mass/volume] in Blood"]),     # text begins the display: no row of its own
    ("Blood sugar", ["Glucose [Mass/volume] in Blood"]),
    ("GLUCOSE", ["glucose level"]),
    ("Glücose", ["Glucose"]),
    ("Vitamin D", []),
    ("Hemoglobin A1c", [None]),
    ("Glucose [Mass/volume] in Blood fasting", ["Glucose"]),  # the display begins the text: kept
    ("Creatinine", ["Serum creatinine", "Creatinine [Mass/volume] in Serum"]),
]


def test_text_matches_display_or_text_by_prefix_with_fewer_rows(db_session):
    """`code:text` finds a resource when the value begins (ignoring case and accents) its CodeableConcept's
    text or a coding's display; a text that begins a display needs no index row for that."""
    from datetime import datetime, timezone

    from gateway.access import Principal
    from gateway.fhir.extract import index_rows, normalize
    from gateway.models import FhirIndex, FhirResource
    from gateway.services.fhir_read import FhirReader

    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    resources = []
    for i, (text, displays) in enumerate(TEXTS):
        codings = [{"system": LOINC, "code": f"{i}-{j}", **({"display": d} if d else {})}
                   for j, d in enumerate(displays)]
        resources.append({"resourceType": "Observation", "id": f"t{i}", "status": "final",
                          "code": {"text": text, **({"coding": codings} if codings else {})}})
    rows = [row for r in resources for row in index_rows(r, "http://testserver/fhir")]
    text_rows = [row for row in rows if row["param"] == "code" and row.get("value") is None]
    assert len(text_rows) == 4  # four of the eight texts begin a display
    for r in resources:
        db_session.add(FhirResource(resource_type="Observation", id=r["id"], class_name="Test",
                                    source_id=r["id"], version_id=1, last_updated=now, deleted=False, body="{}"))
    db_session.flush()
    db_session.add_all([FhirIndex(**{"system": None, "value": None, "norm": None, **row}) for row in rows])
    db_session.flush()
    reader = FhirReader(db_session, Principal(master=True), "http://testserver/fhir")
    for query in ("g", "glu", "glucose", "GLUCOSE [mass", "glü", "blood", "blood sugar", "vitamin", "hemo",
                  "glucose [mass/volume] in blood f", "creat", "serum", "x"):
        wanted = normalize(query)
        expected = sorted(r["id"] for r, (text, displays) in zip(resources, TEXTS)
                          if any(normalize(t).startswith(wanted) for t in [text, *filter(None, displays)]))
        page, _ = reader.search("Observation", [("code:text", query), ("_count", "50")])
        assert sorted(m.id for m in page.matches) == expected, query
