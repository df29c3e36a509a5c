"""Synthea-style patient records as FHIR R4 transaction Bundles (the shape Synthea's FHIR exporter writes:
`urn:uuid:` fullUrls, POST entries, references between entries by fullUrl), restricted to the resource
types the gateway serves. Deterministic for a given seed, so tests can assert exact counts."""
from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

SYNTHEA_ID = "https://github.com/synthetichealth/synthea"
MRN = "http://hospital.smarthealthit.org"
LOINC, UCUM, CVX = "http://loinc.org", "http://unitsofmeasure.org", "http://hl7.org/fhir/sid/cvx"
SNOMED, RXNORM = "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm"
LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory",
       "display": "Laboratory"}

#: (LOINC, display, text, UCUM unit, low, high) - common labs Synthea emits.
LABS = [
    ("2339-0", "Glucose [Mass/volume] in Blood", "Glucose", "mg/dL", 70, 140),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "Hemoglobin A1c", "%", 4.5, 7.5),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "Total cholesterol", "mg/dL", 150, 260),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "Creatinine", "mg/dL", 0.6, 1.4),
]
#: (CVX, display)
VACCINES = [("140", "Influenza, seasonal, injectable, preservative free"),
            ("208", ("SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, "
                     "30 mcg/0.3mL dose")),
            ("115", "Tdap")]
#: (SNOMED substance, display, text, category)
ALLERGENS = [("762952008", "Peanut (substance)", "Peanut", "food"),
             ("764146007", "Penicillin (substance)", "Penicillin", "medication")]
#: (RxNorm, display, text)
MEDS = [("6809", "metformin", "Metformin"), ("29046", "lisinopril", "Lisinopril")]


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient(family: str, given: str, *, gender: str = "female", birth: str = "1970-05-17",
            mrn: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYNTHEA_ID, "value": str(uuid.uuid4())},
                       {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                             "code": "MR", "display": "Medical Record Number"}],
                                 "text": "Medical Record Number"},
                        "system": MRN, "value": mrn or str(uuid.uuid4())}],
        "name": [{"use": "official", "family": family, "given": [given], "text": f"{given} {family}"}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"line": ["12 Main St"], "city": "Boston", "state": "MA", "country": "US"}],
    }


def lab(patient_ref: str, i: int, when: date, value: float | None = None) -> dict[str, Any]:
    code, display, text, unit, low, high = LABS[i % len(LABS)]
    v = value if value is not None else round(low + (high - low) * ((i * 37) % 100) / 100, 1)
    return {
        "resourceType": "Observation", "status": "final", "category": [{"coding": [LAB]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": text},
        "subject": {"reference": patient_ref}, "effectiveDateTime": when.isoformat(),
        "valueQuantity": {"value": v, "unit": unit, "system": UCUM, "code": unit},
    }


def immunization(patient_ref: str, i: int, when: date) -> dict[str, Any]:
    code, display = VACCINES[i % len(VACCINES)]
    return {
        "resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"coding": [{"system": CVX, "code": code, "display": display}], "text": display},
        "patient": {"reference": patient_ref}, "occurrenceDateTime": when.isoformat(), "primarySource": False,
    }


def allergy(patient_ref: str, i: int) -> dict[str, Any]:
    code, display, text, category = ALLERGENS[i % len(ALLERGENS)]
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": "active", "display": "Active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "unconfirmed", "display": "Unconfirmed"}]},
        "category": [category], "criticality": "high" if i % 2 == 0 else "low",
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": text},
        "patient": {"reference": patient_ref}, "recordedDate": "2024-03-05T09:15:00Z",
        "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "severe" if i % 2 == 0 else "mild"}],
    }


def medication(patient_ref: str, i: int, start: date) -> dict[str, Any]:
    code, display, text = MEDS[i % len(MEDS)]
    return {
        "resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": text},
        "subject": {"reference": patient_ref}, "effectivePeriod": {"start": start.isoformat()},
        "dosage": [{"text": "500 mg twice daily"}],
    }


def record_bundle(family: str = "Rutherford", given: str = "Amelia", *, labs: int = 4, vaccines: int = 2,
                  allergies: int = 1, meds: int = 1, seed: int = 7, mrn: str | None = None,
                  kind: str = "transaction") -> dict[str, Any]:
    """One patient's record as Synthea writes it: a transaction of POSTs linked by urn:uuid."""
    rnd = random.Random(seed)
    pid = urn()
    entries = [(pid, patient(family, given, mrn=mrn, gender=rnd.choice(["female", "male"])))]
    start = date(2019, 1, 1)
    for i in range(labs):
        entries.append((urn(), lab(pid, i, start + timedelta(days=30 * i + rnd.randrange(5)))))
    for i in range(vaccines):
        entries.append((urn(), immunization(pid, i, start + timedelta(days=200 * i))))
    for i in range(allergies):
        entries.append((urn(), allergy(pid, i)))
    for i in range(meds):
        entries.append((urn(), medication(pid, i, start + timedelta(days=90 * i))))
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": full, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
        for full, r in entries]}
