"""A worker loads every model FHIR validation can need before it serves: afterwards, validating imports no
module (fhir.resources otherwise imports element models on first use, inside the first requests)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent("""
    import sys
    from gateway.fhir import validation
    from gateway.fhir.params import RESOURCE_TYPES
    {warm}
    before = set(sys.modules)
    observation = {{"resourceType": "Observation", "status": "final", "code": {{"text": "x"}},
                    "subject": {{"reference": "Patient/a"}}, "effectiveDateTime": "2024-01-02",
                    "valueQuantity": {{"value": 1.5, "unit": "mg/dL"}},
                    "referenceRange": [{{"low": {{"value": 1}}, "text": "1-2"}}]}}
    statement = {{"resourceType": "MedicationStatement", "status": "active", "subject": {{"reference": "Patient/a"}},
                  "medicationCodeableConcept": {{"text": "m"}},
                  "dosage": [{{"text": "1", "timing": {{"repeat": {{"frequency": 1, "period": 1, "periodUnit": "d"}}}}}}]}}
    assert validation.problems(observation, "Observation") == []
    assert validation.problems(statement, "MedicationStatement") == []
    print(sorted(m for m in set(sys.modules) - before if m.startswith("fhir")))
""")


def _imported_while_validating(warm: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK.format(warm=warm)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_validation_imports_nothing_after_the_warm_up():
    assert _imported_while_validating("print(validation.warm_up(RESOURCE_TYPES))").splitlines()[-1] == "[]"


def test_without_it_the_first_validation_imports_element_models():
    assert "quantity" in _imported_while_validating("")
