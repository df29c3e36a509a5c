"""Patient.contact carries the emergency contacts, which are their own sharing category: a provider
granted other categories sees the Patient without them, on every path that hands out a Patient."""
from __future__ import annotations

import orjson
import pytest

from tests.fhir.conftest import Fhir, body
from tests.native.conftest import ok
from tests.sharing.helpers import grant_body


@pytest.fixture
def shared(client, signup, make_profile, provider_user):
    _, owner = signup("pat")
    pid = make_profile(owner, "Pat Example")
    ok(owner.post("/classes/EmergencyContact", {"profile": {"__type": "Pointer", "className": "Profile",
                                                            "objectId": pid},
                                                "name": "Robin Example", "relationship": "spouse",
                                                "phone": "+1 555 0100"}), 201)
    _, without, without_login = provider_user("dr.allergies")
    _, with_contacts, with_login = provider_user("dr.contacts")
    ok(owner.post("/classes/SharedAccess", grant_body(pid, without, scope=("allergies",))), 201)
    ok(owner.post("/classes/SharedAccess", grant_body(pid, with_contacts, scope=("allergies", "contacts"))), 201)
    return {"pid": pid, "owner": owner, "without": Fhir(client, without_login.token),
            "with": Fhir(client, with_login.token), "without_provider": without}


def contacts_of(resource: dict) -> list:
    return [c.get("name", {}).get("text") for c in resource.get("contact", [])]


def test_owner_and_contacts_grantee_see_contacts_others_do_not(client, shared):
    pid = shared["pid"]
    owner = Fhir(client, shared["owner"].token)
    assert contacts_of(body(owner.get(f"Patient/{pid}"))) == ["Robin Example"]
    assert contacts_of(body(shared["with"].get(f"Patient/{pid}"))) == ["Robin Example"]
    dr = shared["without"]
    assert contacts_of(body(dr.get(f"Patient/{pid}"))) == []
    version = body(dr.get(f"Patient/{pid}"))["meta"]["versionId"]
    assert contacts_of(body(dr.get(f"Patient/{pid}/_history/{version}"))) == []
    for bundle in (body(dr.get("Patient", {"_id": pid})), body(dr.get(f"Patient/{pid}/_history")),
                   body(dr.get(f"Patient/{pid}/$everything")),
                   body(dr.get("AllergyIntolerance", {"patient": pid, "_include": "AllergyIntolerance:patient"}))):
        patients = [e["resource"] for e in bundle.get("entry", []) if e.get("resource", {}).get("resourceType") == "Patient"]
        assert all(contacts_of(p) == [] for p in patients)
    assert "Robin" not in dr.get(f"Patient/{pid}").get_data(as_text=True)


def test_group_export_leaves_contacts_out_without_the_category(client, shared, run_worker):
    dr = shared["without"]
    r = dr.get(f"Group/{shared['without_provider']}/$export", headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.get_data(as_text=True)
    location = r.headers["Content-Location"].split("/fhir/", 1)[1]
    assert run_worker() == 1
    answer = dr.get(location)
    assert answer.status_code == 200
    manifest = orjson.loads(answer.get_data())
    patient_files = [o["url"].split("/fhir/", 1)[1] for o in manifest["output"] if o["type"] == "Patient"]
    lines = [orjson.loads(line) for f in patient_files for line in dr.get(f).get_data().splitlines()]
    assert [p["id"] for p in lines] == [shared["pid"]]
    assert all("contact" not in p for p in lines)
