"""String search: starts-with, case- and accent-insensitive; :exact and :contains
(hl7.org/fhir/R4/search.html#string)."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import ids, load_record, outcome


@pytest.fixture
def patients(person):
    """One caregiver managing three family members (one user may own several profiles)."""
    carer = person("carer")
    out = {}
    for key, (family, given) in {"zoe": ("Müller", "Zoë"), "max": ("Muller", "Max"), "li": ("O'Brien-Li", "Li")}.items():
        load_record(carer, family=family, given=given, labs=0, vaccines=0, allergies=0, meds=0, mrn=key)
        out[key] = carer.patient_id
    return carer, out


@pytest.mark.parametrize("param, value, expect", [
    ("family", "muller", ["zoe", "max"]),  # accents and case ignored
    ("family", "MÜL", ["zoe", "max"]),
    ("family:exact", "Müller", ["zoe"]),
    ("family:exact", "müller", []),
    ("family:contains", "brien", ["li"]),
    ("family", "brien", []),  # starts-with only
    ("given", "zoe", ["zoe"]),
    ("name", "max", ["max"]),
    ("name", "Li", ["li"]),
    ("name:contains", "ll", ["zoe", "max"]),
    ("address-city", "bost", ["zoe", "max", "li"]),
    ("address", "12 main", ["zoe", "max", "li"]),
    ("name", "müller,o'brien", ["zoe", "max", "li"]),
])
def test_string(patients, param, value, expect):
    carer, p = patients
    assert sorted(ids(carer.fhir.search("Patient", {param: value}))) == sorted(p[k] for k in expect)


def test_string_on_other_types(alice):
    assert len(ids(alice.fhir.search("Observation", {"code:text": "hemoglobin"}))) == 1
    outcome(alice.fhir.get("Patient", {"family:below": "x"}), 400)


def test_escaped_comma_is_literal(person):
    p = load_record(person("comma"), family="Smith, Jr", given="Al", labs=0, vaccines=0, allergies=0, meds=0)
    assert ids(p.fhir.search("Patient", {"family:exact": "Smith\\, Jr"})) == [p.patient_id]
    assert synthea  # data came from the Synthea-style builder


def test_value_string_finds_a_string_value_and_a_codeable_concepts_text(alice):
    """R4 value-string is `(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept))
    .text`: the type applies to `value`, not to the `.text` after it."""
    made = {}
    for key, value in (("string", {"valueString": "Negative for influenza"}),
                       ("concept", {"valueCodeableConcept": {"text": "Positive for influenza A",
                                                             "coding": [{"system": "http://snomed.info/sct",
                                                                         "code": "10828004"}]}})):
        lab = {k: v for k, v in synthea.lab(alice.ref, 1, synthea.date(2024, 5, 1)).items()
               if not k.startswith("value")}
        made[key] = alice.fhir.create({**lab, **value})["id"]
    found = {(param, value): sorted(ids(alice.fhir.search("Observation", {param: value})))
             for param, value in (("value-string", "positive for"), ("value-string", "negative"),
                                  ("value-string:contains", "influenza"), ("value-string", "10828004"))}
    assert found == {("value-string", "positive for"): [made["concept"]],
                     ("value-string", "negative"): [made["string"]],
                     ("value-string:contains", "influenza"): sorted(made.values()),
                     ("value-string", "10828004"): []}
