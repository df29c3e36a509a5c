"""Validation remembers valid elements (gateway/fhir/validation.py): the answers stay exactly those of the
models, an equal element is not validated twice, an invalid one is never remembered, and memory is bounded."""
from __future__ import annotations

import copy
from datetime import date

import pytest
from fhir_core.types import FhirBase, FhirElementOrResourceBase

from gateway.fhir import validation
from tests.fhir import synthea

REF = "Patient/abcdefghij"


def _corpus() -> list[dict]:
    lab = synthea.lab(REF, 0, date(2024, 1, 2), value=5.5)
    bad_status = {**copy.deepcopy(lab), "status": "nonsense"}
    # The same Coding valid where a Coding belongs, and invalid as a Quantity (no `display` there).
    coding = {"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}
    as_quantity = {**copy.deepcopy(lab), "valueQuantity": dict(coding)}
    unknown_field = copy.deepcopy(lab)
    unknown_field["code"]["coding"][0]["colour"] = "red"
    wrong_type = copy.deepcopy(lab)
    wrong_type["valueQuantity"]["value"] = "five"
    nested_null = copy.deepcopy(lab)
    nested_null["code"]["coding"].append(None)  # a null complex element
    return [synthea.patient("Doe", "Jane"), lab, bad_status, as_quantity, unknown_field, wrong_type,
            nested_null, synthea.immunization(REF, 1, date(2023, 5, 1)), synthea.allergy(REF, 2),
            synthea.medication(REF, 3, date(2022, 2, 2)), lab]


@pytest.fixture
def memo(monkeypatch):
    monkeypatch.setattr(validation, "_valid_elements", {})
    return validation._valid_elements


def test_the_models_validator_is_wrapped_where_fhir_core_defines_it():
    # A fhir_core that moved or renamed its per-element validator would leave validation unremembered.
    for klass in (FhirBase, FhirElementOrResourceBase):
        assert getattr(klass.__dict__["fhir_model_validator"].__func__, "remembering", False), klass


def test_answers_are_the_models_answers(memo, monkeypatch):
    corpus = _corpus()
    remembered = [validation.problems(r) for r in corpus] + [validation.problems(r) for r in corpus]
    assert memo  # the valid elements were remembered ...
    monkeypatch.setattr(validation, "ELEMENT_MEMO_TEXT", 0)  # ... and now nothing is
    memo.clear()
    plain = [validation.problems(r) for r in corpus]
    assert not memo
    assert remembered == plain + plain
    invalid = [bool(p) for p in plain]
    assert invalid == [False, False, True, True, True, True, True, False, False, False, False]


def test_an_equal_element_is_validated_once(memo, monkeypatch):
    calls = []
    inner = validation._remembering(lambda cls, value, klass: calls.append(value) or object())
    first = inner(FhirBase, {"code": "x", "system": "http://s"}, FhirBase)
    second = inner(FhirBase, {"system": "http://s", "code": "x"}, FhirBase)  # key order does not matter
    assert first is second and len(calls) == 1
    inner(FhirElementOrResourceBase, {"code": "x", "system": "http://s"}, FhirBase)  # another type: asked
    assert len(calls) == 2


def test_invalid_elements_and_nan_are_never_remembered(memo):
    def refuse(cls, value, klass):
        raise ValueError("invalid")

    inner = validation._remembering(refuse)
    for _ in range(2):
        with pytest.raises(ValueError):
            inner(FhirBase, {"code": "x"}, FhirBase)
    assert not memo
    accept = validation._remembering(lambda cls, value, klass: object())
    # orjson writes NaN as null: it would share null's key
    accept(FhirBase, {"value": float("nan")}, FhirBase)
    assert not memo


def test_memory_is_bounded(memo, monkeypatch):
    monkeypatch.setattr(validation, "ELEMENT_MEMO_SIZE", 10)
    inner = validation._remembering(lambda cls, value, klass: object())
    for i in range(25):
        inner(FhirBase, {"code": str(i)}, FhirBase)
        assert len(memo) <= 10
    inner(FhirBase, {"code": "x" * 2000}, FhirBase)
    assert all(len(key[2]) <= validation.ELEMENT_MEMO_TEXT for key in memo)
