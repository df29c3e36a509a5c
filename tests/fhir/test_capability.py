"""/metadata: a CapabilityStatement valid against the strict R4 models, and true: every interaction it
claims for every resource type is exercised here, and every search parameter, _include and _revinclude
it claims is run with a plausible value that must not be refused."""
from __future__ import annotations

import pytest

from tests.fhir.conftest import Fhir, body, pointer

#: A value of each search parameter type that any server claiming the parameter must accept.
VALUES = {"token": "http://example.org/fhir/cs|x", "string": "a", "date": "ge2000-01-01",
          "reference": "Patient/abcdefghij", "quantity": "gt1", "number": "gt1", "uri": "http://example.org/x"}


#: Resource types served by their own modules and proven by their own tests (bulk export, subscriptions).
OWNED_ELSEWHERE = {"Group", "Subscription"}
BULK_OPERATIONS = {"export", "patient-export", "group-export"}


@pytest.fixture
def statement(anonymous):
    return body(anonymous.get("metadata"))


def test_statement_is_strict_r4_and_generated(statement):
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    rest = statement["rest"][0]
    types = [r["type"] for r in rest["resource"]]
    assert {"Patient", "Observation", "AllergyIntolerance", "Immunization", "MedicationStatement",
            "DocumentReference", "Binary", "Consent", "AuditEvent", "RelatedPerson", "Practitioner",
            "Organization"} <= set(types)
    assert {i["code"] for i in rest["interaction"]} >= {"history-system", "batch", "transaction"}
    audit = next(r for r in rest["resource"] if r["type"] == "AuditEvent")
    assert not {"create", "update", "patch", "delete"} & {i["code"] for i in audit["interaction"]}


def upload(p, data: bytes) -> str:
    r = p.parse.client.post("/parse/files/note.txt", data=data, headers=p.parse.headers(), content_type="text/plain")
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["name"]


@pytest.fixture
def world(alice, bob, client, make_user):
    """One resource of every type, and who may write it (Organizations/Practitioners: the master key)."""
    master = Fhir(client, master=True)
    name = upload(alice, b"clinic note\n")
    prof = pointer("Profile", alice.patient_id)
    doc = alice.parse.post("/classes/MedicalDocument", {"profile": prof, "file": {"__type": "File", "name": name},
                                                        "documentType": "Clinical note", "title": "Visit"}).json
    contact = alice.parse.post("/classes/EmergencyContact", {"profile": prof, "name": "Jordan Rutherford",
                                                             "relationship": "spouse", "phone": "+1 555 0199"}).json
    share = alice.parse.post("/classes/SharedAccess", {"profile": prof, "grantee": pointer("_User", bob.user_id),
                                                       "accessLevel": "read", "scope": ["labs"]}).json
    assert all("objectId" in x for x in (doc, contact, share)), (doc, contact, share)
    org = master.create({"resourceType": "Organization", "name": "Boston General"})["id"]
    pra = master.create({"resourceType": "Practitioner", "name": [{"family": "Who", "given": ["Hanna"]}]})["id"]
    event = alice.fhir.search("AuditEvent", {"_count": "1"})["entry"][0]["resource"]["id"]
    ids = {rt: rids[0] for rt, rids in alice.record.items()}
    ids.update(DocumentReference=doc["objectId"], Binary=f"{doc['objectId']}-v1", RelatedPerson=contact["objectId"],
               Consent=share["objectId"], Organization=org, Practitioner=pra, AuditEvent=event)
    writers = {rt: (master if rt in ("Organization", "Practitioner") else alice.fhir) for rt in ids}
    return ids, writers, alice


def test_every_claimed_interaction_works(statement, world):
    ids, writers, alice = world
    fhir = alice.fhir
    others = {res["type"] for res in statement["rest"][0]["resource"]} - set(ids)
    assert others <= OWNED_ELSEWHERE, others
    for res in statement["rest"][0]["resource"]:
        if res["type"] in OWNED_ELSEWHERE:
            continue
        rt, rid = res["type"], ids[res["type"]]
        w = writers[rt]
        for code in [i["code"] for i in res["interaction"]]:
            where = f"{rt} {code}"
            if code == "read":
                r = fhir.get(f"{rt}/{rid}")
                assert r.status_code == 200, (where, r.get_data(as_text=True))
                if rt != "Binary":
                    body(r)
            elif code == "vread":
                assert body(fhir.get(f"{rt}/{rid}/_history/1"))["id"] == rid, where
            elif code == "history-instance":
                assert body(fhir.get(f"{rt}/{rid}/_history"))["total"] >= 1, where
            elif code == "history-type":
                assert body(fhir.get(f"{rt}/_history"))["type"] == "history", where
            elif code == "search-type":
                assert rid in [e["resource"]["id"] for e in fhir.search(rt, {"_id": rid})["entry"]], where
            elif code == "create":
                original = w.read(f"{rt}/{rid}")
                copy = {k: v for k, v in original.items() if k not in ("id", "meta")}
                if rt == "DocumentReference":  # a file belongs to one document: the copy gets its own
                    copy["content"][0]["attachment"]["extension"][0]["valueString"] = upload(alice, b"copy\n")
                made = body(w.post(rt, copy), 201)
                ids.setdefault("_copies", []).append((rt, made["id"], w))
            elif code == "update":
                current = w.read(f"{rt}/{rid}")
                assert body(w.put(f"{rt}/{rid}", current))["id"] == rid, where
            elif code == "patch":
                r = w.patch(f"{rt}/{rid}", [{"op": "test", "path": "/id", "value": rid}])
                assert body(r)["id"] == rid, where
            elif code == "delete":
                pass  # below, on the copies, so that later interactions still have their resource
            else:
                pytest.fail(f"{where}: an interaction this test does not know how to exercise")
        for op in res.get("operation", []):
            if op["name"] == "validate" and rt != "Binary":
                assert body(fhir.post(f"{rt}/$validate", w.read(f"{rt}/{rid}")))["resourceType"] == "OperationOutcome"
            elif op["name"] == "everything":
                assert body(fhir.get(f"{rt}/{rid}/$everything"))["type"] == "searchset"
            else:
                assert op["name"] in BULK_OPERATIONS, f"{rt} ${op['name']}: not exercised here"
    deletable = {res["type"] for res in statement["rest"][0]["resource"]
                 if "delete" in [i["code"] for i in res.get("interaction", [])]}
    for rt, rid, w in reversed(ids.get("_copies", [])):
        if rt in deletable:
            assert w.delete(f"{rt}/{rid}").status_code == 204, rt
            assert w.get(f"{rt}/{rid}").status_code == 410, rt
    # system level
    assert body(fhir.get("_history"))["type"] == "history"
    for kind in ("batch", "transaction"):
        result = body(fhir.post("", {"resourceType": "Bundle", "type": kind, "entry": [
            {"request": {"method": "GET", "url": f"Patient/{ids['Patient']}"}}]}))
        assert result["type"] == f"{kind}-response"


def test_every_claimed_search_parameter_is_accepted(statement, alice):
    refused = []
    for res in statement["rest"][0]["resource"]:
        rt = res["type"]
        for sp in res.get("searchParam", []):
            for key, value in ((sp["name"], VALUES[sp["type"]]), (f"{sp['name']}:missing", "true")):
                if rt in OWNED_ELSEWHERE and key.endswith(":missing"):
                    continue
                r = alice.fhir.get(rt, {key: value, "_count": "1"})
                if r.status_code != 200:
                    refused.append((rt, key, value, r.status_code, r.get_data(as_text=True)[:200]))
                else:
                    assert r.mimetype == "application/fhir+json"
        for key in ("searchInclude", "searchRevInclude"):
            for spec in res.get(key, []):
                param = "_include" if key == "searchInclude" else "_revinclude"
                r = alice.fhir.get(rt, {param: spec, "_count": "1"})
                if r.status_code != 200:
                    refused.append((rt, param, spec, r.status_code, r.get_data(as_text=True)[:200]))
    assert not refused, "\n".join(map(str, refused))


def test_claimed_search_parameters_find_real_data(statement, alice):
    """Not only accepted: the parameters our mappings fill find Alice's resources by their own values."""
    obs = alice.fhir.read(f"Observation/{alice.record['Observation'][0]}")
    code = obs["code"]["coding"][0]
    checks = {("Observation", "code", f"{code['system']}|{code['code']}"), ("Observation", "subject", alice.ref),
              ("Observation", "date", obs["effectiveDateTime"]), ("Observation", "category", "laboratory"),
              ("Patient", "family", "Rutherford"), ("Patient", "given", "Amelia"), ("Patient", "name", "amelia"),
              ("Patient", "identifier", "MRN-ALICE"), ("Immunization", "vaccine-code", "140"),
              ("Immunization", "status", "completed"), ("AllergyIntolerance", "clinical-status", "active"),
              ("MedicationStatement", "status", "active"), ("MedicationStatement", "subject", alice.ref)}
    claimed = {(r["type"], p["name"]) for r in statement["rest"][0]["resource"] for p in r.get("searchParam", [])}
    for rt, name, value in checks:
        assert (rt, name) in claimed
        assert alice.fhir.search(rt, {name: value})["total"] >= 1, (rt, name, value)
