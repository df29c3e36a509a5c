"""Demo data: a patient who manages her own and her child's records, and a doctor she shares with.

The demo accounts' passwords are published in the README on purpose (this is demo data); nothing here is
used unless `phr-gateway demo` is run.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.access import MASTER
from gateway.models import Profile, Provider, User
from gateway.services.files import FileService
from gateway.services.objects import ObjectService
from gateway.services.users import UserService

DEMO_PASSWORD = "demo-password"


def _date(text: str) -> dict[str, str]:
    return {"__type": "Date", "iso": f"{text}T00:00:00.000Z" if len(text) == 10 else text}


def _ptr(cls: str, oid: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": cls, "objectId": oid}


def _user(session: Session, username: str, role: str, email: str) -> User:
    existing = session.scalar(select(User).where(User.username == username))
    return existing or UserService(session).create_user(username, DEMO_PASSWORD, email=email, role=role)


def load_demo(session: Session, *, base_url: str) -> dict[str, Any]:
    users = UserService(session)
    patient = _user(session, "demo", "patient", "demo@example.org")
    doctor = _user(session, "dr.demo", "provider", "dr.demo@example.org")
    result = {
        "base_url": base_url,
        "password": DEMO_PASSWORD,
        "users": {"patient": {"username": "demo", "objectId": patient.object_id},
                  "provider": {"username": "dr.demo", "objectId": doctor.object_id}},
    }
    existing = session.scalars(select(Profile.object_id).where(Profile.user_id == patient.object_id)).all()
    if existing:
        result["profiles"] = list(existing)
        return result

    p = users.principal(patient)
    objs = ObjectService(session, p)
    master = ObjectService(session, MASTER)
    provider = master.create("Provider", {
        "name": "Dr. Dana Demo", "kind": "practitioner", "systemId": "1234567893",
        "contact": {"phone": "+1 555 0100", "email": "dr.demo@example.org"}, "user": _ptr("_User", doctor.object_id),
    }).row
    alex = objs.create("Profile", {
        "fullName": "Alex Demo", "birthDate": _date("1986-04-12"), "gender": "female", "bloodType": "O+",
        "primaryCareProvider": "Dr. Dana Demo",
    }).row
    sam = objs.create("Profile", {"fullName": "Sam Demo", "birthDate": _date("2016-09-30"), "gender": "male"}).row
    a, s = _ptr("Profile", alex.object_id), _ptr("Profile", sam.object_id)
    for body in (
        {"profile": a, "substance": "Peanut", "severity": "severe", "reaction": "Anaphylaxis",
         "notes": "Carries an epinephrine auto-injector", "onsetDate": _date("1990-06-01")},
        {"profile": a, "substance": "Penicillin", "severity": "moderate", "reaction": "Hives", "isActive": False},
        {"profile": s, "substance": "Cat dander", "severity": "mild", "reaction": "Sneezing"},
    ):
        objs.create("Allergy", body)
    for body in (
        {"profile": a, "vaccineName": "Influenza", "dateAdministered": _date("2025-10-15"), "dose": "1",
         "lotNumber": "FL2025-118", "provider": "City Pharmacy", "nextDoseDate": _date("2026-10-15")},
        {"profile": a, "vaccineName": "COVID-19 mRNA (Pfizer-BioNTech)", "dateAdministered": _date("2024-11-02"),
         "performer": _ptr("Provider", provider.object_id)},
        {"profile": s, "vaccineName": "MMR", "dateAdministered": _date("2017-10-01"), "dose": "1"},
    ):
        objs.create("Vaccination", body)
    for body in (
        {"profile": a, "name": "Metformin", "dose": "500 mg", "frequency": "twice daily",
         "instructions": "Take with meals", "startDate": _date("2023-02-01")},
        {"profile": a, "name": "Amoxicillin", "dose": "500 mg", "frequency": "three times daily", "active": False,
         "startDate": _date("2024-03-01"), "endDate": _date("2024-03-10")},
    ):
        objs.create("Medication", body)
    report = FileService(session, p, secret=b"demo", max_size=1 << 20, url_ttl=60).upload(
        "lab-report-2025.txt", b"HbA1c 6.1 %\nFasting glucose 98 mg/dL\n", "text/plain")
    doc = objs.create("MedicalDocument", {
        "profile": a, "file": {"__type": "File", "name": report.name}, "documentType": "Lab report",
        "title": "Annual lab panel 2025", "tags": ["labs", "annual"], "isShared": True,
    }).row
    for body in (
        {"profile": a, "testName": "Hemoglobin A1c", "value": 6.1, "units": "%", "referenceRange": "4.0-5.6",
         "date": _date("2025-09-20"), "attachment": _ptr("MedicalDocument", doc.object_id)},
        {"profile": a, "testName": "Glucose", "value": 98, "units": "mg/dL", "referenceRange": "70-99",
         "date": _date("2025-09-20")},
        {"profile": a, "testName": "Urine culture", "value": "No growth", "date": _date("2025-05-02")},
    ):
        objs.create("LabResult", body)
    objs.create("EmergencyContact", {"profile": a, "name": "Jordan Demo", "relationship": "spouse",
                                     "phone": "+1 555 0199"})
    objs.create("SharedAccess", {
        "profile": a, "grantee": _ptr("_User", doctor.object_id), "provider": _ptr("Provider", provider.object_id),
        "accessLevel": "read", "scope": ["allergies", "medications", "labs"],
        "expiresAt": {"__type": "Date", "iso": (datetime.now(timezone.utc) + timedelta(days=90)).isoformat()},
    })
    result["profiles"] = [alex.object_id, sam.object_id]
    result["provider"] = provider.object_id
    return result


__all__ = ["DEMO_PASSWORD", "Provider", "load_demo"]
