"""Small builders shared by the sharing tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import pointer


def iso_in(seconds: float) -> dict[str, str]:
    """A Parse Date `seconds` from now (negative: in the past)."""
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return {"__type": "Date", "iso": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"}


def consent(patient_id: str, provider_id: str, classes=("AllergyIntolerance",), *, status: str = "active",
            end: str = "2099-01-01T00:00:00Z", write: bool = False) -> dict[str, Any]:
    """A FHIR Consent giving a provider (Practitioner) the resource types `classes` of one patient."""
    actions = ["access", "correct"] if write else ["access"]
    return {
        "resourceType": "Consent", "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit", "period": {"end": end},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                            "code": "IRCP"}]},
                       "reference": {"reference": f"Practitioner/{provider_id}"}}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": c}]}
                       for c in actions],
            "class": [{"system": "http://hl7.org/fhir/resource-types", "code": c} for c in classes],
        },
    }


def grant_body(profile_id: str, provider_id: str, scope=("allergies",), level: str = "read", **extra) -> dict:
    return {"profile": pointer("Profile", profile_id), "provider": pointer("Provider", provider_id),
            "accessLevel": level, "scope": list(scope), **extra}


def entry_ids(bundle: dict, rt: str | None = None) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if "resource" in e and (rt is None or e["resource"]["resourceType"] == rt)}
