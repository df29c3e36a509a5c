"""Parameters made of others (gateway/fhir/params.py `storage`): `combo-code`, `combo-value-quantity`,
Observation's `patient`, AuditEvent's `patient`... have no index rows of their own and are searched in the
rows of the parameters they are made of. Every search must find exactly what it found when each parameter
had rows of its own: the same resources are indexed both ways and every query is run on each."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, true

from gateway.access import Principal
from gateway.fhir import extract, params
from gateway.models import FhirIndex, FhirResource
from gateway.services.fhir_read import FhirReader

BASE = "http://testserver/fhir"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _quantity(value: float, code: str) -> dict:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def _concept(code: str, text: str | None = None) -> dict:
    out = {"coding": [{"system": LOINC, "code": code, "display": f"Display {code}"}]}
    return {**out, "text": text} if text else out


#: References of every form the index tells apart: typed (relative, own base, versioned), of another
#: type, an absolute URL elsewhere, a logical identifier only, and none.
SUBJECTS = [
    {"reference": "Patient/p1"}, {"reference": "Group/g1"},
    {"reference": "http://elsewhere.example/fhir/Patient/p9"},
    {"identifier": {"system": "urn:mrn", "value": "123"}}, {"reference": "Patient/p1/_history/2"},
    None, {"reference": f"{BASE}/Patient/p2"}, {"reference": "Patient/p2", "identifier": {"value": "123"}},
]


def _observations() -> list[dict]:
    out = []
    for i, subject in enumerate(SUBJECTS):
        obs = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
               "code": _concept("a" if i % 2 else "b")}
        if subject is not None:
            obs["subject"] = subject
        if i % 3 == 0:
            obs["component"] = [{"code": _concept("c"), "valueQuantity": _quantity(120 + i, "mm[Hg]")},
                                {"code": _concept("a"), "valueCodeableConcept": _concept("pos", "Positive")}]
        if i % 3 == 1:
            obs["valueQuantity"] = _quantity(5.4 + i, "mg")
        if i % 3 == 2:
            obs["dataAbsentReason"] = _concept("unknown")
            obs["component"] = [{"code": _concept("b"), "dataAbsentReason": _concept("masked")}]
        out.append(obs)
    return out


def _audit_events() -> list[dict]:
    whos = [{"reference": "Patient/p1"}, {"reference": "Practitioner/x"}, {"identifier": {"value": "u1"}},
            {"reference": "http://elsewhere.example/fhir/Patient/p9"}]
    whats = [{"reference": "Observation/o1"}, {"reference": "Patient/p1"}, {"reference": "Patient/p2"},
             {"identifier": {"value": "Patient/p1"}}]
    return [{"resourceType": "AuditEvent", "id": f"a{i}", "type": {"code": "rest"},
             "recorded": "2024-01-01T00:00:00Z",
             "agent": [{"who": who, "requestor": True}], "source": {"observer": {"reference": "Device/d"}},
             "entity": [{"what": what}]} for i, (who, what) in enumerate(zip(whos, whats))]


def _resources() -> list[dict]:
    patients = [{"resourceType": "Patient", "id": pid} for pid in ("p1", "p2")]
    others = [{"resourceType": rt, "id": f"{rt[:3].lower()}{i}", "status": "current", "subject": subject,
               **({"content": [{"attachment": {"url": "x"}}]} if rt == "DocumentReference"
                  else {"medicationCodeableConcept": _concept("m")})}
              for rt in ("MedicationStatement", "DocumentReference")
              for i, subject in enumerate(SUBJECTS[:4])]
    return patients + _observations() + _audit_events() + others


def _queries() -> list[tuple[str, list[tuple[str, str]]]]:
    refs = ["Patient/p1", "p1", "p2", "Group/g1", "g1", f"{BASE}/Patient/p2",
            "http://elsewhere.example/fhir/Patient/p9",
            "Patient/p9", "Practitioner/x", "Observation/o1"]
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for rt in ("Observation", "MedicationStatement", "DocumentReference", "AuditEvent"):
        out += [(rt, [("patient", v)]) for v in refs]
        out += [(rt, [("patient:Patient", "p1")]), (rt, [("patient:Group", "g1")]),
                (rt, [("patient:identifier", "urn:mrn|123")]), (rt, [("patient:identifier", "123")]),
                (rt, [("patient:missing", "true")]), (rt, [("patient:missing", "false")]),
                (rt, [("patient", "p1,p2")]), (rt, [("_sort", "patient")]), (rt, [("_sort", "-patient")]),
                (rt, [("_include", f"{rt}:patient")]), (rt, [("patient.name", "x")])]
        out += [("Patient", [(f"_has:{rt}:patient:_id", i)])
                for i in ("o0", "o1", "a1", "a2", "med0", "doc0")]
        out += [("Patient", [("_revinclude", f"{rt}:patient")])]
    for code in ("a", "b", "c", "pos", f"{LOINC}|a", f"{LOINC}|", "|a", "nope"):
        out += [("Observation", [("combo-code", code)]), ("Observation", [("combo-code:not", code)]),
                ("Observation", [("combo-value-concept", code)])]
    for text in ("display a", "Positive", "pos"):
        out += [("Observation", [("combo-code:text", text)]),
                ("Observation", [("combo-value-concept:text", text)])]
    for value in ("5.4", "gt6", "le124", "120", f"121|{UCUM}|mm[Hg]", "ap126", "6.4||mg"):
        out += [("Observation", [("combo-value-quantity", value)])]
    for reason in ("unknown", "masked", f"{LOINC}|unknown"):
        out += [("Observation", [("combo-data-absent-reason", reason)])]
    for name in ("combo-code", "combo-value-quantity", "combo-value-concept", "combo-data-absent-reason"):
        out += [("Observation", [(f"{name}:missing", "true")]),
                ("Observation", [(f"{name}:missing", "false")]),
                ("Observation", [("_sort", name)]), ("Observation", [("_sort", f"-{name}")])]
    out += [("Observation", [("combo-code", "a"), ("patient", "p1")]),
            ("Observation", [("combo-code", "c"), ("combo-value-quantity", "gt100")])]
    return out


def _store(session, resources: list[dict]) -> None:
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    session.execute(delete(FhirIndex))
    session.execute(delete(FhirResource))
    for r in resources:
        session.add(FhirResource(resource_type=r["resourceType"], id=r["id"], class_name="Test",
                                 source_id=r["id"][:10], version_id=1, last_updated=now, deleted=False,
                                 body="{}"))
    session.flush()
    for r in resources:
        for row in extract.index_rows(r, BASE):
            session.add(FhirIndex(**row))
    session.flush()


def _run(session) -> dict:
    reader = FhirReader(session, Principal(master=True), BASE)
    out = {}
    for rt, items in _queries():
        # `extra` keeps each search from being prepared: the two runs must each build their own statement.
        page, _ = reader.search(rt, items + [("_count", "100")], extra=true())
        out[(rt, tuple(items))] = ([m.id for m in page.matches],
                                   sorted((i.resource_type, i.id) for i in page.includes))
    return out


def _every_param_stored_as_itself(monkeypatch) -> None:
    own = {rt: {code: params.Storage((code,)) for code in params.params_for(rt)}
           for rt in params.RESOURCE_TYPES}
    monkeypatch.setattr(params, "storage", lambda rt: own[rt])
    monkeypatch.setattr(extract, "storage", lambda rt: own[rt])
    extract._index_plan.cache_clear()


def test_derived_parameters_find_what_their_own_rows_found(db_session, monkeypatch):
    resources = _resources()
    with monkeypatch.context() as m:
        _every_param_stored_as_itself(m)
        _store(db_session, resources)
        own_rows = db_session.query(FhirIndex).count()
        expected = _run(db_session)
    extract._index_plan.cache_clear()
    _store(db_session, resources)
    assert db_session.query(FhirIndex).count() < own_rows
    found = _run(db_session)
    differ = {q: (expected[q], found[q]) for q in expected if expected[q] != found[q]}
    assert not differ
    # The queries are not vacuous: most find something, and some find a strict part of a type's resources.
    assert sum(1 for ids, _ in expected.values() if ids) > len(expected) // 2
    assert any(ids and len(ids) < 8 for (rt, _), (ids, _) in expected.items() if rt == "Observation")


def test_which_parameters_are_derived():
    derived = {(rt, code): s for rt in params.RESOURCE_TYPES for code, s in params.storage(rt).items()
               if s.params != (code,)}
    assert derived == {
        ("Observation", "patient"): params.Storage(("subject",), "Patient"),
        ("MedicationStatement", "patient"): params.Storage(("subject",), "Patient"),
        ("DocumentReference", "patient"): params.Storage(("subject",), "Patient"),
        ("AuditEvent", "patient"): params.Storage(("agent", "entity"), "Patient"),
        ("Observation", "combo-code"): params.Storage(("code", "component-code")),
        ("Observation", "combo-value-quantity"):
            params.Storage(("component-value-quantity", "value-quantity")),
        ("Observation", "combo-value-concept"): params.Storage(("component-value-concept", "value-concept")),
        ("Observation", "combo-data-absent-reason"):
            params.Storage(("component-data-absent-reason", "data-absent-reason")),
    }
    for (rt, _), s in derived.items():  # made of parameters stored as themselves
        assert all(params.storage(rt)[p] == params.Storage((p,)) for p in s.params)


@pytest.mark.parametrize("rt, code", [("Observation", "combo-code"), ("Observation", "patient"),
                                      ("AuditEvent", "patient")])
def test_derived_parameters_have_no_rows(rt, code):
    resource = next(r for r in _resources() if r["resourceType"] == rt and extract.rows_for_param(
        r, params.params_for(rt)[code], BASE))
    assert code not in {row["param"] for row in extract.index_rows(resource, BASE)}
