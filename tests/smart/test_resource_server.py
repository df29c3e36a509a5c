"""The FHIR face as a SMART resource server: 401 without a live token for this server, 403 outside the
scopes, a patient token confined to its patient's compartment (read, search, _include, _revinclude,
chains, $everything, history, Binary, writes), v1 and v2 scopes and v2 query constraints, user tokens
intersected with the user's own rights."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from gateway.db import utcnow
from gateway.models.oauth import OAuthGrant, OAuthToken
from tests.fhir.conftest import ids, load_record, outcome
from tests.fhir.test_binary import PDF, upload
from tests.smart.conftest import share

READ_ALL = "launch/patient patient/*.rs"


@pytest.fixture
def app_public(smart):
    return smart.register(kind="none")


@pytest.fixture
def family(person):
    """Carol manages two records: her own (first) and her son's (second)."""
    carol = person("carol")
    load_record(carol, family="Smith", given="Carol", mrn="MRN-CAROL", seed=3)
    own = carol.patient_id, dict(carol.record)
    load_record(carol, family="Smith", given="Danny", mrn="MRN-DANNY", labs=3, seed=5)
    son = carol.patient_id, dict(carol.record)
    return carol, own, son


def document(owner, profile_id: str) -> str:
    from tests.conftest import pointer

    name = upload(owner, "letter.pdf", PDF, "application/pdf")
    r = owner.parse.post("/classes/MedicalDocument", {
        "profile": pointer("Profile", profile_id), "file": {"__type": "File", "name": name},
        "documentType": "Referral letter", "title": "Referral"})
    assert r.status_code == 201, r.json
    return r.json["objectId"]


@pytest.fixture
def carol_token(smart, app_public, family):
    _, own, son = family
    t = smart.login(app_public, READ_ALL, "carol", patient=own[0])
    return smart.fhir(t["access_token"]), own, son


# ---- 401 ----

def test_no_token_unknown_token_and_wrong_scheme(smart, anonymous, alice):
    outcome(anonymous.get(f"Patient/{alice.patient_id}"), 401)
    r = smart.fhir("not-a-token").get(f"Patient/{alice.patient_id}")
    outcome(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token(smart, app_public, alice, db_session):
    t = smart.login(app_public, READ_ALL, "alice", patient=alice.patient_id)
    db_session.execute(update(OAuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    outcome(smart.fhir(t["access_token"]).get(f"Patient/{alice.patient_id}"), 401)


def test_revoked_grant(smart, app_public, alice, db_session):
    t = smart.login(app_public, READ_ALL, "alice", patient=alice.patient_id)
    db_session.execute(update(OAuthGrant).values(revoked_at=utcnow()))
    db_session.commit()
    outcome(smart.fhir(t["access_token"]).get(f"Patient/{alice.patient_id}"), 401)


def test_token_for_another_server(smart, app_public, alice, db_session):
    t = smart.login(app_public, READ_ALL, "alice", patient=alice.patient_id)
    db_session.execute(update(OAuthGrant).values(audience="https://other.example.org/fhir"))
    db_session.commit()
    outcome(smart.fhir(t["access_token"]).get(f"Patient/{alice.patient_id}"), 401)


def test_refresh_token_is_not_an_access_token(smart, app_public, alice):
    t = smart.login(app_public, READ_ALL + " offline_access", "alice", patient=alice.patient_id)
    outcome(smart.fhir(t["refresh_token"]).get(f"Patient/{alice.patient_id}"), 401)


# ---- patient compartment ----

def test_patient_token_reads_only_its_patient(carol_token):
    fhir, own, son = carol_token
    assert fhir.read(f"Patient/{own[0]}")["id"] == own[0]
    assert fhir.read(f"Observation/{own[1]['Observation'][0]}")
    outcome(fhir.get(f"Patient/{son[0]}"), 404)
    outcome(fhir.get(f"Observation/{son[1]['Observation'][0]}"), 404)
    outcome(fhir.get(f"Immunization/{son[1]['Immunization'][0]}"), 404)
    outcome(fhir.get(f"Observation/{son[1]['Observation'][0]}/_history/1"), 404)


def test_patient_token_search(carol_token):
    fhir, own, son = carol_token
    assert sorted(ids(fhir.search("Observation", {"_count": "100"}))) == sorted(own[1]["Observation"])
    assert fhir.search("Observation", {"patient": son[0]})["total"] == 0
    assert fhir.search("Observation", {"subject": f"Patient/{son[0]}"})["total"] == 0
    assert ids(fhir.search("Patient")) == [own[0]]
    assert fhir.search("Observation", {"patient.given": "Danny"})["total"] == 0  # chained
    assert fhir.search("Observation", {"patient.given": "Carol"})["total"] == len(own[1]["Observation"])
    assert fhir.search("Patient", {"_has:Observation:patient:code": "2339-0", "given": "Danny"})["total"] == 0


def test_patient_token_include_and_revinclude(carol_token):
    fhir, own, son = carol_token
    bundle = fhir.search("Patient", {"_revinclude": "Observation:patient"})
    refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert refs == {f"Patient/{own[0]}"} | {f"Observation/{i}" for i in own[1]["Observation"]}
    bundle = fhir.search("Observation", {"_include": "Observation:patient", "_count": "100"})
    included = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included == [own[0]]
    bundle = fhir.search("Immunization", {"_include": "Immunization:*", "_revinclude": "Immunization:*"})
    assert son[0] not in str(bundle)


def test_patient_token_everything(carol_token):
    fhir, own, son = carol_token
    outcome(fhir.get(f"Patient/{son[0]}/$everything"), 404)
    everything = fhir.get(f"Patient/{own[0]}/$everything").json
    assert son[0] not in str(everything)
    assert {e["resource"]["id"] for e in everything["entry"]} >= set(own[1]["Observation"])


def test_patient_token_history(carol_token):
    fhir, _, son = carol_token
    outcome(fhir.get(f"Observation/{son[1]['Observation'][0]}/_history"), 404)
    outcome(fhir.get(f"Patient/{son[0]}/_history"), 404)
    for path in ("Observation/_history", "_history", "Patient/_history"):
        r = fhir.get(path)
        assert r.status_code == 200, r.get_data(as_text=True)
        assert son[0] not in r.get_data(as_text=True)
        assert all(e["resource"]["id"] not in son[1].get(e["resource"]["resourceType"], [])
                   for e in r.json.get("entry", []) if "resource" in e)


def test_patient_token_binary(smart, app_public, family):
    carol, own, son = family
    mine, his = document(carol, own[0]), document(carol, son[0])
    t = smart.login(app_public, "launch/patient patient/DocumentReference.rs patient/Patient.rs", "carol",
                    patient=own[0])
    fhir = smart.fhir(t["access_token"])
    r = fhir.get(f"Binary/{mine}-v1", headers={"Accept": "application/pdf"})
    assert r.status_code == 200 and r.data == PDF
    outcome(fhir.get(f"Binary/{his}-v1"), 404)
    outcome(fhir.get(f"DocumentReference/{his}"), 404)
    outcome(smart.fhir(smart.login(app_public, "launch/patient patient/Observation.rs", "carol",
                                   patient=own[0])["access_token"]).get(f"Binary/{mine}-v1"), 403)


def test_patient_token_writes_stay_in_the_compartment(smart, app_public, family):
    _, own, son = family
    t = smart.login(app_public, "launch/patient patient/Observation.cruds patient/Patient.rs", "carol",
                    patient=own[0])
    fhir = smart.fhir(t["access_token"])
    lab = fhir.read(f"Observation/{own[1]['Observation'][0]}")
    new = {k: v for k, v in lab.items() if k not in ("id", "meta")}
    assert fhir.post("Observation", new).status_code == 201
    outcome(fhir.post("Observation", {**new, "subject": {"reference": f"Patient/{son[0]}"}}), 403)
    moved = {**lab, "subject": {"reference": f"Patient/{son[0]}"}}
    moved.pop("meta")
    outcome(fhir.put(f"Observation/{lab['id']}", moved), 403)
    his = son[1]["Observation"][0]
    outcome(fhir.delete(f"Observation/{his}"), 404)
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**new, "subject": {"reference": f"Patient/{son[0]}"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    outcome(fhir.post("", transaction), 403)
    assert fhir.delete(f"Observation/{lab['id']}").status_code == 204


# ---- 403 outside the scopes ----

def test_type_outside_the_scopes_is_forbidden(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/Observation.rs", "alice", patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    assert fhir.search("Observation")["total"] == len(alice.record["Observation"])
    outcome(fhir.get("Immunization"), 403)
    outcome(fhir.get(f"Immunization/{alice.record['Immunization'][0]}"), 403)
    outcome(fhir.get(f"Patient/{alice.patient_id}"), 403)
    outcome(fhir.get(f"Patient/{alice.patient_id}/$everything"), 403)
    outcome(fhir.post("Observation", {"resourceType": "Observation"}), 403)
    outcome(fhir.delete(f"Observation/{alice.record['Observation'][0]}"), 403)
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Immunization/{alice.record['Immunization'][0]}"}},
        {"request": {"method": "GET", "url": f"Observation/{alice.record['Observation'][0]}"}}]}
    result = fhir.post("", batch).json
    assert result["entry"][0]["response"]["status"].startswith("403")
    assert result["entry"][1]["response"]["status"].startswith("200")


def test_read_only_letters(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/Observation.r", "alice", patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    assert fhir.read(f"Observation/{alice.record['Observation'][0]}")
    outcome(fhir.get("Observation"), 403)  # no 's': no search


# ---- v1 and v2 scopes ----

def test_v1_scopes(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/*.read", "alice", patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    assert fhir.search("Immunization")["total"] == len(alice.record["Immunization"])
    lab = fhir.read(f"Observation/{alice.record['Observation'][0]}")
    outcome(fhir.put(f"Observation/{lab['id']}", {k: v for k, v in lab.items() if k != "meta"}), 403)
    w = smart.login(app_public, "launch/patient patient/Observation.write patient/Observation.read", "alice",
                    patient=alice.patient_id)
    writer = smart.fhir(w["access_token"])
    assert writer.put(f"Observation/{lab['id']}", {k: v for k, v in lab.items() if k != "meta"}).status_code == 200


def test_v2_query_constraint_filters_results(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/Observation.rs?code=http://loinc.org|2339-0", "alice",
                    patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    found = fhir.search("Observation", {"_count": "100"})
    codes = {e["resource"]["code"]["coding"][0]["code"] for e in found["entry"]}
    assert codes == {"2339-0"} and 0 < found["total"] < len(alice.record["Observation"])
    others = [i for i in alice.record["Observation"] if i not in ids(found)]
    outcome(fhir.get(f"Observation/{others[0]}"), 404)
    category = smart.login(app_public, "launch/patient patient/Observation.rs?category=laboratory", "alice",
                           patient=alice.patient_id)
    assert smart.fhir(category["access_token"]).search("Observation")["total"] == len(alice.record["Observation"])
    vital = smart.login(app_public, "launch/patient patient/Observation.rs?category=vital-signs", "alice",
                        patient=alice.patient_id)
    assert smart.fhir(vital["access_token"]).search("Observation")["total"] == 0


def test_duplicated_scopes_are_tolerated(smart, app_public, alice):
    t = smart.login(app_public, "launch/patient patient/Observation.rs patient/Observation.rs", "alice",
                    patient=alice.patient_id)
    assert smart.fhir(t["access_token"]).search("Observation")["total"] == len(alice.record["Observation"])


# ---- user tokens: never more than the user may see ----

def test_user_token_intersects_the_users_grants(smart, app_public, provider, alice, bob):
    uid, prov = provider
    share(alice, uid, prov, scope=("labs",))
    t = smart.login(app_public, "openid fhirUser user/*.rs", "dr.grey")
    fhir = smart.fhir(t["access_token"])
    subjects = {e["resource"]["subject"]["reference"].split("/")[-1] for e in fhir.search("Observation")["entry"]}
    assert subjects == {alice.patient_id}
    assert fhir.search("Immunization")["total"] == 0
    outcome(fhir.get(f"Patient/{bob.patient_id}"), 404)
    lab = fhir.read(f"Observation/{alice.record['Observation'][0]}")
    outcome(fhir.put(f"Observation/{lab['id']}", {k: v for k, v in lab.items() if k != "meta"}), 403)


def test_patient_context_narrows_a_providers_token(smart, app_public, provider, alice, bob):
    uid, prov = provider
    share(alice, uid, prov, scope=("labs",))
    share(bob, uid, prov, scope=("labs",))
    t = smart.login(app_public, "launch/patient patient/Observation.rs", "dr.grey", patient=alice.patient_id)
    fhir = smart.fhir(t["access_token"])
    subjects = {e["resource"]["subject"]["reference"].split("/")[-1] for e in fhir.search("Observation")["entry"]}
    assert subjects == {alice.patient_id}
    outcome(fhir.get(f"Observation/{bob.record['Observation'][0]}"), 404)
