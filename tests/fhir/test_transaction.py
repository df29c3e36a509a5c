"""batch and transaction Bundles (hl7.org/fhir/R4/http.html#transaction): all or nothing, R4's processing
order, urn:uuid references resolved everywhere, conditional create/update inside entries, and the
response Bundle's status / location / etag / lastModified per entry."""
from __future__ import annotations

import base64

import orjson
from sqlalchemy import func, select

from gateway.models import FhirResource, LabResult, Profile
from tests.fhir import synthea
from tests.fhir.conftest import body, ids, load_record, outcome


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_synthea_transaction_imports_a_linked_record(person):
    alice = person("alice")
    bundle = synthea.record_bundle(labs=3, vaccines=2, allergies=1, meds=1)
    result = alice.fhir.transaction(bundle)
    assert result["type"] == "transaction-response"
    assert len(result["entry"]) == len(bundle["entry"])
    for entry in result["entry"]:
        r = entry["response"]
        assert r["status"] == "201 Created"
        rt, rid, _, vid = r["location"].split("/")
        assert (entry["resource"]["resourceType"], entry["resource"]["id"]) == (rt, rid)
        assert r["etag"] == f'W/"{vid}"' and r["lastModified"]
        assert entry["fullUrl"].endswith(f"/{rt}/{rid}")
    pid = result["entry"][0]["resource"]["id"]
    # every urn:uuid reference now names the new Patient
    for entry in result["entry"][1:]:
        res = entry["resource"]
        assert (res.get("subject") or res.get("patient"))["reference"] == f"Patient/{pid}"
    # and it is the same record the native API serves (one truth)
    labs = alice.parse.get("/classes/LabResult", {"where": {"profile": {"__type": "Pointer", "className": "Profile",
                                                                         "objectId": pid}}}).json["results"]
    assert sorted(x["testName"] for x in labs) == sorted(["Glucose", "Hemoglobin A1c", "Total cholesterol"])
    assert alice.parse.get(f"/classes/Profile/{pid}").json["fullName"] == "Amelia Rutherford"


def test_processing_order_delete_post_put_get(person):
    """Entries run DELETE, POST, PUT/PATCH, GET whatever their order in the Bundle; the response keeps the
    request's order."""
    alice = load_record(person("alice"), labs=2)
    doomed, kept = alice.record["Observation"]
    new = synthea.lab("urn:uuid:11111111-1111-4111-8111-111111111111", 2, synthea.date(2024, 1, 1))
    new["subject"] = {"reference": alice.ref}
    current = alice.fhir.read(f"Observation/{kept}")
    current["valueQuantity"]["value"] = 123.0
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Observation?subject={alice.ref}&_sort=_id"}},
        {"resource": current, "request": {"method": "PUT", "url": f"Observation/{kept}"}},
        {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": new,
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": f"Observation/{doomed}"}},
    ]}
    result = alice.fhir.transaction(bundle)
    search, put, post, _ = result["entry"]
    assert [e["response"]["status"] for e in result["entry"]] == ["200 OK", "200 OK", "201 Created", "204 No Content"]
    found = {e["resource"]["id"]: e["resource"] for e in search["resource"]["entry"]}
    assert doomed not in found  # GET ran after the DELETE...
    assert post["resource"]["id"] in found  # ...after the POST...
    assert found[kept]["valueQuantity"]["value"] == 123.0  # ...and after the PUT
    assert put["response"]["etag"] == 'W/"2"'
    outcome(alice.fhir.get(f"Observation/{doomed}"), 410)


def test_a_failing_entry_rolls_back_everything(person, db_session):
    alice = load_record(person("alice"), labs=1)
    before = (count(db_session, Profile), count(db_session, LabResult), count(db_session, FhirResource))
    bundle = synthea.record_bundle(family="Nguyen", given="Lan", labs=2)
    bundle["entry"].append({"request": {"method": "DELETE", "url": f"Observation/{alice.record['Observation'][0]}"}})
    bad = synthea.lab(bundle["entry"][0]["fullUrl"], 0, synthea.date(2024, 2, 2))
    bad["status"] = "not-a-status"  # a required binding: 422
    bundle["entry"].append({"fullUrl": synthea.urn(), "resource": bad, "request": {"method": "POST", "url": "Observation"}})
    oo = outcome(alice.fhir.post("", bundle), 422)
    assert "Bundle.entry[" in oo["issue"][0]["diagnostics"]
    assert (count(db_session, Profile), count(db_session, LabResult), count(db_session, FhirResource)) == before
    alice.fhir.read(f"Observation/{alice.record['Observation'][0]}")  # the DELETE was undone too


def test_transaction_failure_statuses_follow_the_failing_entry(person):
    alice = load_record(person("alice"), labs=1)
    obs = alice.record["Observation"][0]
    stale = alice.fhir.read(f"Observation/{obs}")
    cases = [
        ({"request": {"method": "GET", "url": "Observation/nosuchid00"}}, 404),
        ({"resource": stale, "request": {"method": "PUT", "url": f"Observation/{obs}", "ifMatch": 'W/"9"'}}, 412),
        ({"request": {"method": "DELETE", "url": "AuditEvent/abcdefghij"}}, 405),
        ({"request": {"method": "POST", "url": "Observation"}}, 400),
        ({"resource": {"resourceType": "Observation", "subject": {"reference": "urn:uuid:nowhere"}, "status": "final",
                       "code": {"text": "x"}}, "request": {"method": "POST", "url": "Observation"}}, 404),
    ]
    for entry, status in cases:
        outcome(alice.fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}), status)


def test_urn_uuid_references_resolved_in_nested_elements(client, make_user):
    """A reference anywhere in a resource (here Immunization.performer[0].actor) is rewritten, not only
    top-level subject/patient. (An admin account: only admins and the master key create Organizations.)"""
    from tests.fhir.conftest import Fhir, Person

    uid, parse = make_user("registrar", role="admin")
    alice = Person(uid, parse, Fhir(client, parse.token))
    pid, org, imm = synthea.urn(), synthea.urn(), synthea.urn()
    immunization = synthea.immunization(pid, 0, synthea.date(2021, 4, 12))
    immunization["performer"] = [{"actor": {"reference": org, "display": "Boston Vaccination Clinic"}}]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        # the Immunization first: the server must still create the Patient before it
        {"fullUrl": imm, "resource": immunization, "request": {"method": "POST", "url": "Immunization"}},
        {"fullUrl": org, "resource": {"resourceType": "Organization", "name": "Boston Vaccination Clinic"},
         "request": {"method": "POST", "url": "Organization"}},
        {"fullUrl": pid, "resource": synthea.patient("Smith", "Ann"), "request": {"method": "POST", "url": "Patient"}},
    ]}
    result = alice.fhir.transaction(bundle)
    got_imm, got_org, got_pat = (e["resource"] for e in result["entry"])
    assert got_imm["patient"]["reference"] == f"Patient/{got_pat['id']}"
    assert got_imm["performer"][0]["actor"]["reference"] == f"Organization/{got_org['id']}"
    found = alice.fhir.search("Immunization", {"performer": f"Organization/{got_org['id']}"})
    assert ids(found) == [got_imm["id"]]


def test_conditional_create_in_a_transaction_reuses_the_match(person):
    alice = load_record(person("alice"), labs=0, vaccines=0, allergies=0, meds=0)
    again = synthea.record_bundle(labs=1, vaccines=0, allergies=0, meds=0, mrn="MRN-ALICE")
    again["entry"][0]["request"]["ifNoneExist"] = f"identifier={synthea.MRN}|MRN-ALICE"
    first = alice.fhir.transaction(again)  # alice's Patient has another MRN: created
    assert first["entry"][0]["response"]["status"] == "201 Created"
    second = synthea.record_bundle(labs=1, vaccines=0, allergies=0, meds=0, mrn="MRN-ALICE")
    second["entry"][0]["request"]["ifNoneExist"] = f"identifier={synthea.MRN}|MRN-ALICE"
    result = alice.fhir.transaction(second)
    patient_entry, lab_entry = result["entry"]
    assert patient_entry["response"]["status"] == "200 OK"
    pid = first["entry"][0]["resource"]["id"]
    assert patient_entry["resource"]["id"] == pid
    assert lab_entry["resource"]["subject"]["reference"] == f"Patient/{pid}"  # urn resolved to the match


def test_conditional_update_in_a_transaction(person):
    alice = load_record(person("alice"), labs=0, vaccines=0, allergies=0, meds=0, mrn="MRN-7")
    patient = synthea.patient("Rutherford", "Amelia", mrn="MRN-7", birth="1971-01-02")
    url = f"Patient?identifier={synthea.MRN}|MRN-7"
    result = alice.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": synthea.urn(), "resource": patient, "request": {"method": "PUT", "url": url}}]})
    entry = result["entry"][0]
    assert entry["response"]["status"] == "200 OK" and entry["resource"]["id"] == alice.patient_id
    assert entry["resource"]["birthDate"] == "1971-01-02"
    new = synthea.patient("Doe", "Jane", mrn="MRN-NEW")
    result = alice.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": new, "request": {"method": "PUT", "url": f"Patient?identifier={synthea.MRN}|MRN-NEW"}}]})
    assert result["entry"][0]["response"]["status"] == "201 Created"


def test_conditional_reference_resolves_to_its_match(person):
    alice = load_record(person("alice"), labs=0, vaccines=0, allergies=0, meds=0, mrn="MRN-COND")
    obs = synthea.lab(f"Patient?identifier={synthea.MRN}|MRN-COND", 0, synthea.date(2024, 5, 1))
    result = alice.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs, "request": {"method": "POST", "url": "Observation"}}]})
    assert result["entry"][0]["resource"]["subject"]["reference"] == alice.ref


def test_patch_entry_with_a_json_patch_binary(person):
    alice = load_record(person("alice"), labs=1)
    obs = alice.record["Observation"][0]
    ops = [{"op": "replace", "path": "/valueQuantity/value", "value": 101.5}]
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": base64.b64encode(orjson.dumps(ops)).decode()}
    result = alice.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": binary, "request": {"method": "PATCH", "url": f"Observation/{obs}"}}]})
    assert result["entry"][0]["response"]["etag"] == 'W/"2"'
    assert alice.fhir.read(f"Observation/{obs}")["valueQuantity"]["value"] == 101.5


def test_the_same_resource_twice_fails(person):
    alice = load_record(person("alice"), labs=1)
    obs = f"Observation/{alice.record['Observation'][0]}"
    outcome(alice.fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": obs}}, {"request": {"method": "DELETE", "url": obs}}]}), 400)


def test_access_applies_per_entry(person):
    """Bob cannot write into Alice's record through a transaction, and nothing of his bundle stays."""
    alice = load_record(person("alice"), labs=1)
    bob = person("bob")
    bundle = synthea.record_bundle(family="Okafor", given="Ben", labs=1)
    intruder = synthea.lab(alice.ref, 0, synthea.date(2024, 1, 1))
    bundle["entry"].append({"resource": intruder, "request": {"method": "POST", "url": "Observation"}})
    oo = outcome(bob.fhir.post("", bundle), 403)
    assert "Bundle.entry[" in oo["issue"][0]["diagnostics"]
    assert body(bob.fhir.get("Patient"))["total"] == 0
    outcome(bob.fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{alice.record['Observation'][0]}"}}]}), 404)


def test_batch_entries_are_independent(person):
    alice = load_record(person("alice"), labs=2)
    keep, gone = alice.record["Observation"]
    good = synthea.lab(alice.ref, 1, synthea.date(2024, 3, 3))
    bad = dict(good, status="bogus")
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": good, "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": f"Observation/{keep}"}},
        {"request": {"method": "GET", "url": "Observation/nosuchid00"}},
        {"request": {"method": "DELETE", "url": f"Observation/{gone}"}},
        {"request": {"method": "GET", "url": f"Observation?subject={alice.ref}"}},
        {"request": {"method": "PUT", "url": "Observation"}},
    ]}
    result = body(alice.fhir.post("", bundle))
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity", "200 OK", "404 Not Found", "204 No Content",
                        "200 OK", "400 Bad Request"]
    for i in (1, 3, 6):
        assert result["entry"][i]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    created = result["entry"][0]["resource"]["id"]
    assert alice.fhir.read(f"Observation/{created}")["status"] == "final"  # the failure did not undo it
    assert result["entry"][2]["response"]["etag"] == 'W/"1"'
    outcome(alice.fhir.get(f"Observation/{gone}"), 410)
    # batch entries in bundle order: the search ran after the DELETE
    assert gone not in ids(result["entry"][5]["resource"])


def test_batch_conditional_create(person):
    alice = load_record(person("alice"), labs=0, vaccines=0, allergies=0, meds=0, mrn="MRN-B")
    patient = synthea.patient("Rutherford", "Amelia", mrn="MRN-B")
    entry = {"resource": patient, "request": {"method": "POST", "url": "Patient",
                                              "ifNoneExist": f"identifier={synthea.MRN}|MRN-B"}}
    result = body(alice.fhir.post("", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))
    assert result["entry"][0]["response"]["status"] == "200 OK"
    assert result["entry"][0]["resource"]["id"] == alice.patient_id


def test_prefer_return_minimal_omits_resources(person):
    alice = person("alice")
    result = body(alice.fhir.post("", synthea.record_bundle(labs=1), headers={"Prefer": "return=minimal"}))
    assert all("resource" not in e and e["response"]["location"] for e in result["entry"])


def test_not_a_batch(person):
    alice = person("alice")
    outcome(alice.fhir.post("", {"resourceType": "Bundle", "type": "collection"}), 400)
    outcome(alice.fhir.post("", {"resourceType": "Patient"}), 400)
    outcome(alice.fhir.post("", data=b"{nope", json=None), 400)
    outcome(alice.fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {}}]}), 400)


def test_capability_claims_batch_and_transaction(anonymous):
    cs = body(anonymous.get("metadata"))
    codes = [i["code"] for i in cs["rest"][0]["interaction"]]
    assert "batch" in codes and "transaction" in codes
    assert len(codes) == len(set(codes))
