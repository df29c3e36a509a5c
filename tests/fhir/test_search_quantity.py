"""Quantity and number search: prefixes, implicit precision, system|code (hl7.org/fhir/R4/search.html#quantity)."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import ids, load_record, outcome


@pytest.fixture
def values(person):
    p = load_record(person("quinn"), labs=0, vaccines=0, allergies=0, meds=0)
    out = {}
    for key, (i, v) in {"g95": (0, 95), "g140": (0, 140.0), "a6_5": (1, 6.5), "a5_4": (1, 5.4)}.items():
        out[key] = p.fhir.create(synthea.lab(p.ref, i, synthea.date(2024, 1, 1), value=v))["id"]
    return p, out


@pytest.mark.parametrize("value, expect", [
    ("95", ["g95"]),
    ("gt100", ["g140"]),
    ("lt6", ["a5_4"]),
    ("le6.5", ["a6_5", "a5_4"]),
    ("ge95", ["g95", "g140"]),
    ("6.5", ["a6_5"]),
    ("6.45", []),  # precision: 6.45 means [6.445, 6.455)
    ("5", ["a5_4"]),  # 5 means [4.5, 5.5)
    ("ne95", ["g140", "a6_5", "a5_4"]),
    ("gt100|http://unitsofmeasure.org|mg/dL", ["g140"]),
    ("lt10|http://unitsofmeasure.org|%", ["a6_5", "a5_4"]),
    ("lt10|http://unitsofmeasure.org|mg/dL", []),
    ("6.5||%", ["a6_5"]),
    ("ap140", ["g140"]),
])
def test_value_quantity(values, value, expect):
    p, v = values
    assert sorted(ids(p.fhir.search("Observation", {"value-quantity": value}))) == sorted(v[k] for k in expect)


def test_combined_with_code(values):
    p, v = values
    assert ids(p.fhir.search("Observation", {"code": "2339-0", "value-quantity": "gt100"})) == [v["g140"]]


def test_invalid_number(values):
    p, _ = values
    outcome(p.fhir.get("Observation", {"value-quantity": "lots"}), 400)
    outcome(p.fhir.get("Observation", {"value-quantity:exact": "5"}), 400)
