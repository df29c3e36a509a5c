"""Date search with eq ne lt gt le ge sa eb ap and partial dates (hl7.org/fhir/R4/search.html#date)."""
from __future__ import annotations

from datetime import date

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import ids, outcome


@pytest.fixture
def dated(person):
    """Labs on 2023-12-31, 2024-01-15, 2024-02-01T10:30:00Z and 2024-03-10 (one patient)."""
    from tests.fhir.conftest import load_record

    p = load_record(person("dee"), labs=0, vaccines=0, allergies=0, meds=0)
    out = {}
    for key, when in {"dec31": "2023-12-31", "jan15": "2024-01-15", "feb1": "2024-02-01T10:30:00Z",
                      "mar10": "2024-03-10"}.items():
        obs = synthea.lab(p.ref, 0, date(2024, 1, 1))
        obs["effectiveDateTime"] = when
        out[key] = p.fhir.create(obs)["id"]
    return p, out


@pytest.mark.parametrize("value, expect", [
    ("2024-01-15", ["jan15"]),
    ("eq2024-01", ["jan15"]),
    ("2024", ["jan15", "feb1", "mar10"]),
    ("ne2024", ["dec31"]),
    ("lt2024-01-15", ["dec31"]),
    ("le2024-01-15", ["dec31", "jan15"]),
    ("gt2024-02-01", ["mar10"]),
    ("ge2024-02-01", ["feb1", "mar10"]),
    ("sa2024-01", ["feb1", "mar10"]),
    ("eb2024-01", ["dec31"]),
    ("2024-02-01T10:30:00Z", ["feb1"]),
    ("2024-02-01T10:30:00+00:00", ["feb1"]),
    ("gt2024-02-01T10:00:00Z", ["feb1", "mar10"]),
    ("2024-02-01T12:30:00+02:00", ["feb1"]),  # the same instant in another zone
])
def test_date_prefixes(dated, value, expect):
    p, d = dated
    assert sorted(ids(p.fhir.search("Observation", {"date": value}))) == sorted(d[k] for k in expect)


def test_approximately(dated):
    """ap widens by 10% of the distance to now (R4 leaves the width to the server): near dates match,
    far ones do not."""
    p, d = dated
    assert d["mar10"] in ids(p.fhir.search("Observation", {"date": "ap2024-03-09"}))
    assert ids(p.fhir.search("Observation", {"date": "ap2010-03-09"})) == []


def test_date_ranges_and_other_params(dated):
    p, d = dated
    found = p.fhir.search("Observation", [("date", "ge2024-01-01"), ("date", "lt2024-03")])
    assert sorted(ids(found)) == sorted([d["jan15"], d["feb1"]])
    birth = p.fhir.read(p.ref)["birthDate"]
    assert ids(p.fhir.search("Patient", {"birthdate": birth[:4]})) == [p.patient_id]
    assert ids(p.fhir.search("Patient", {"birthdate": f"lt{birth[:4]}"})) == []
    assert len(ids(p.fhir.search("Observation", {"_lastUpdated": f"ge{date.today().year - 1}"}))) == 4
    assert ids(p.fhir.search("Observation", {"_lastUpdated": "lt2000"})) == []


def test_medication_period_overlap(alice):
    # effectivePeriod {start: 2019-01-01} is open-ended: it overlaps every later date (ge), starts after 2018
    # (sa), but no year fully contains it (eq: the search range must contain the target's range)
    assert len(ids(alice.fhir.search("MedicationStatement", {"effective": "ge2030"}))) == 1
    assert len(ids(alice.fhir.search("MedicationStatement", {"effective": "sa2018"}))) == 1
    assert ids(alice.fhir.search("MedicationStatement", {"effective": "2030"})) == []
    assert ids(alice.fhir.search("MedicationStatement", {"effective": "lt2018"})) == []


def test_invalid_date(alice):
    outcome(alice.fhir.get("Observation", {"date": "yesterday"}), 400)
    outcome(alice.fhir.get("Observation", {"date": "2024-13-40"}), 400)
