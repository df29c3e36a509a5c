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
