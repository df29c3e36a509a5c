"""What a transaction Bundle writes, now that its rows go to the database together (services/write_buffer.py):
a number of SQL statements that does not grow with the number of resources, one audit row and one
AuditEvent per action and profile naming every written record, index rows equal to what the stored bodies
index to, nothing at all when an entry fails, and reads inside the transaction that see its writes."""
from __future__ import annotations

from collections import Counter

import orjson
from sqlalchemy import func, select

from gateway.fhir.extract import index_rows
from gateway.models import (
    AclEntry, AuditLog, EmergencyContact, FhirHistory, FhirIndex, FhirResource, LabResult, Profile, RecordVersion,
    Vaccination,
)
from tests.conftest import sent_during
from tests.fhir import synthea
from tests.fhir.conftest import body, load_record, outcome

BASE = "http://testserver/fhir"
TABLES = (Profile, LabResult, Vaccination, EmergencyContact, AclEntry, RecordVersion, AuditLog, FhirResource,
          FhirHistory, FhirIndex)


def writes_of(window: list[str]) -> list[str]:
    """The write's statements: change notifications (sent by the bus at commit) and the BEGIN of a deferred
    transaction are the bus's and the connection's."""
    return [t for t in window if "pg_notify" not in t and t.strip().upper() != "BEGIN"]


def contact(patient: str) -> dict:
    return {"resourceType": "RelatedPerson", "patient": {"reference": patient},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                          "code": "SPS", "display": "spouse"}]}],
            "name": [{"text": "Pat Partner"}], "telecom": [{"system": "phone", "value": "+1 555 0100"}]}


def with_contact(bundle: dict) -> dict:
    patient = bundle["entry"][0]["fullUrl"]
    bundle["entry"].append({"fullUrl": synthea.urn(), "resource": contact(patient),
                            "request": {"method": "POST", "url": "RelatedPerson"}})
    return bundle


def counts(db_session) -> dict[str, int]:
    return {m.__tablename__: db_session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def test_statements_do_not_grow_with_the_number_of_resources(sent, person):
    """Before the write buffer a created resource cost ~36 statements (3,364 for a Bundle of 93); now the
    Bundle's rows go as a few INSERTs (or COPYs) per table, however many resources it holds."""
    counted = {}
    for name, n in (("small", 5), ("large", 60)):
        who = person(name)
        bundle = with_contact(synthea.record_bundle(labs=n, vaccines=n // 5 + 1, seed=n))
        with sent_during(sent) as seen:
            result = who.fhir.transaction(bundle)
        assert len(result["entry"]) == len(bundle["entry"])
        counted[name] = (len(writes_of(seen)), len(bundle["entry"]))
    (small, small_n), (large, large_n) = counted["small"], counted["large"]
    assert large_n - small_n > 50
    assert small > 10, counted  # the spy sees the writes
    assert large - small <= 2, counted  # per Bundle, not per resource
    assert large <= 120, counted  # where there were ~36 per resource (2,700 for this Bundle)


def test_one_audit_row_per_action_and_profile_naming_every_record(person, db_session):
    """A transaction is one interaction: its creates in a profile are one AuditLog row (one AuditEvent)
    whose entity is the first record and whose metadata and AuditEvent.entity list every record once."""
    alice = person("alice")
    bundle = with_contact(synthea.record_bundle(labs=3, vaccines=2, allergies=1, meds=1))
    result = alice.fhir.transaction(bundle)
    created = [e["response"]["location"].split("/")[:2] for e in result["entry"]]
    pid = created[0][1]
    record_ids = {rid for _rt, rid in created}
    rows = db_session.scalars(select(AuditLog).where(AuditLog.profile_id == pid)).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.entity_type, row.entity_id) == ("create", "Profile", pid)
    assert row.summary == f"{alice.user_id} create {len(created)} records (transaction)"
    listed = row.details["entities"]
    assert (row.details["via"], row.details["interaction"]) == ("fhir", "transaction")
    assert {k: len(v) for k, v in listed.items()} == {"Profile": 1, "LabResult": 3, "Vaccination": 2,
                                                      "Allergy": 1, "Medication": 1, "EmergencyContact": 1}
    assert {i for ids in listed.values() for i in ids} == record_ids
    event_row = db_session.get(FhirResource, ("AuditEvent", row.object_id))
    assert event_row is not None and event_row.version_id == 1 and event_row.profile_id == pid
    event = orjson.loads(event_row.body)
    named = [e["what"]["reference"] for e in event["entity"] if "role" not in e]
    assert sorted(named) == sorted(f"{rt}/{rid}" for rt, rid in created)  # each once, the Patient first
    assert named[0] == f"Patient/{pid}"
    assert db_session.scalar(select(func.count()).select_from(FhirHistory).where(
        FhirHistory.resource_type == "AuditEvent", FhirHistory.id == row.object_id)) == 1
    # the owner finds the event by any record it wrote
    for rt, rid in (created[1], created[-1]):
        found = alice.fhir.search("AuditEvent", {"entity": f"{rt}/{rid}"})
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [row.object_id]
    # no record has a replaced version yet (the current one is its row); each has one owner-only ACL entry
    assert db_session.scalar(select(func.count()).select_from(RecordVersion)) == 0
    for rt, rid in created:
        acl = db_session.scalars(select(AclEntry).where(AclEntry.object_id == rid)).all()
        assert [(a.principal, a.can_read, a.can_write) for a in acl] == [(alice.user_id, True, True)]
    # the Patient was stored again with its contact, into the version the transaction made
    history = db_session.scalars(select(FhirHistory.version_id).where(
        FhirHistory.resource_type == "Patient", FhirHistory.id == pid).order_by(FhirHistory.version_id)).all()
    assert history == [1]
    assert alice.fhir.read(f"Patient/{pid}")["contact"][0]["name"]["text"] == "Pat Partner"


def _stored_index(db_session, rt: str, rid: str) -> Counter:
    rows = db_session.scalars(select(FhirIndex).where(FhirIndex.resource_type == rt, FhirIndex.resource_id == rid))
    return Counter((r.param, r.system, r.value, r.norm, r.low, r.high, r.number, r.target_type, r.target_id)
                   for r in rows)


def _expected_index(resource: dict) -> Counter:
    def ms(t):  # UTCDateTime keeps milliseconds
        return t.replace(microsecond=t.microsecond // 1000 * 1000) if t is not None else None

    return Counter((r["param"], r.get("system"), r.get("value"), r.get("norm"), ms(r.get("low")), ms(r.get("high")),
                    r.get("number"), r.get("target_type"), r.get("target_id")) for r in index_rows(resource, BASE))


def test_index_rows_are_those_of_the_stored_bodies(person, db_session):
    """Every resource the Bundle wrote (records, the re-made Patient, the AuditEvents) is indexed exactly as
    its stored body indexes: no row missing, none left over from the Patient's first version."""
    alice = person("alice")
    result = alice.fhir.transaction(with_contact(synthea.record_bundle(labs=4, vaccines=2)))
    pid = result["entry"][0]["response"]["location"].split("/")[1]
    stored = db_session.scalars(select(FhirResource).where(FhirResource.profile_id == pid)).all()
    assert Counter(r.resource_type for r in stored)["AuditEvent"] == 1  # the transaction's creates
    for row in stored:
        got, want = _stored_index(db_session, row.resource_type, row.id), _expected_index(orjson.loads(row.body))
        assert want and got == want, (row.resource_type, row.id)


def test_a_failing_entry_leaves_nothing_behind(person, db_session):
    """All or nothing: the entries that ran before the failing one wrote nothing that stays, not even
    audit rows, versions, ACL entries or index rows."""
    alice = load_record(person("alice"), labs=1)
    before = counts(db_session)
    bundle = with_contact(synthea.record_bundle(labs=5, vaccines=2, seed=3))
    bad = synthea.lab(bundle["entry"][0]["fullUrl"], 9, synthea.date(2024, 1, 1))
    bad["status"] = "not-a-status"
    bundle["entry"].append({"fullUrl": synthea.urn(), "resource": bad, "request": {"method": "POST", "url": "Observation"}})
    outcome(alice.fhir.post("", bundle), 422)
    assert counts(db_session) == before


def test_reads_in_the_transaction_see_its_writes(person):
    """GET entries run last (R4) and find what the POSTs wrote: records, search index, reference targets."""
    alice = person("alice")
    bundle = synthea.record_bundle(labs=3, vaccines=0, allergies=0, meds=0)
    patient = bundle["entry"][0]["fullUrl"]
    bundle["entry"][:0] = [{"request": {"method": "GET", "url": f"Observation?subject={patient}&code=2339-0"}},
                           {"request": {"method": "GET", "url": "Patient?family=Rutherford"}}]
    result = alice.fhir.transaction(bundle)
    search, read = result["entry"][0]["resource"], result["entry"][1]["resource"]
    glucose = [e for e in result["entry"][2:] if e["resource"]["resourceType"] == "Observation"
               and e["resource"]["code"]["coding"][0]["code"] == "2339-0"]
    assert search["total"] == len(glucose) == 1
    assert search["entry"][0]["resource"]["id"] == glucose[0]["resource"]["id"]
    assert [e["resource"]["id"] for e in read["entry"]] == [result["entry"][2]["resource"]["id"]]


def test_batch_entries_keep_their_own_audit_rows(person, db_session):
    """A batch's failing entry writes nothing; the others stand with one audit row each."""
    alice = load_record(person("alice"), labs=1)
    good = [synthea.lab(alice.ref, i, synthea.date(2024, 1, 1 + i)) for i in range(3)]
    bad = dict(good[0], status="not-a-status")
    entries = [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in (good[0], bad, *good[1:])]
    audit_before = db_session.scalar(select(func.count()).select_from(AuditLog))
    result = body(alice.fhir.post("", {"resourceType": "Bundle", "type": "batch", "entry": entries}))
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses[0] == statuses[2] == statuses[3] == "201 Created" and statuses[1].startswith("422")
    created = {e["response"]["location"].split("/")[1] for e in result["entry"] if "location" in e["response"]}
    rows = db_session.scalars(select(AuditLog.entity_id).where(AuditLog.profile_id == alice.patient_id,
                                                               AuditLog.entity_type == "LabResult")).all()
    assert created <= set(rows) and db_session.scalar(select(func.count()).select_from(AuditLog)) - audit_before == 3


def test_a_patients_bundle_asks_no_policy_question_after_creating_its_patient(sent, person):
    """The caller's own new Patient is known to the request: its records (four classes here) are checked
    without asking the database whose profile it is, so the buffered rows are not sent class by class."""
    who = person("newpatient")
    bundle = synthea.record_bundle(labs=3, vaccines=2, allergies=1, meds=1)
    with sent_during(sent) as seen:
        who.fhir.transaction(bundle)
    flat = [" ".join(s.split()) for s in seen]
    policy = [s for s in flat if s.upper().startswith("SELECT") and ("FROM shared_access" in s or "FROM profile" in s)]
    # At most the token's own lookup (no caller cache in this suite) reads the caller's profiles.
    assert all("user_session" in s for s in policy), policy



def answered(result: dict, rt: str) -> list[dict]:
    return [e for e in result["entry"] if e["response"].get("location", "").startswith(rt + "/")]


def test_a_bundle_creating_a_patient_with_contacts_makes_one_version_that_has_them(person):
    """The Patient is stored again at the end of the scope with the contacts the Bundle adds (once for all
    of them), into the version the Bundle created: the answer's location, ETag and lastModified are what
    the server holds, and its history has that one version, contacts included."""
    who = person("contacts")
    bundle = with_contact(with_contact(synthea.record_bundle(labs=1, vaccines=1)))
    result = who.fhir.transaction(bundle)
    [entry] = answered(result, "Patient")
    pid = entry["response"]["location"].split("/")[1]
    patient = body(who.fhir.get(f"/Patient/{pid}"))
    assert len(patient["contact"]) == 2
    assert entry["response"]["location"] == f"Patient/{pid}/_history/{patient['meta']['versionId']}"
    assert entry["response"]["etag"] == f'W/"{patient["meta"]["versionId"]}"' == 'W/"1"'
    assert entry["response"]["lastModified"] == patient["meta"]["lastUpdated"]
    assert entry["resource"] == patient  # the default is return=representation
    history = body(who.fhir.get(f"/Patient/{pid}/_history"))
    assert [e["resource"] for e in history["entry"]] == [patient]
    assert [e["request"]["method"] for e in history["entry"]] == ["POST"]  # still the version that created it
    assert body(who.fhir.get(f"/Patient/{pid}/_history/1")) == patient


def test_a_transaction_updating_a_patient_and_adding_a_contact_makes_one_version(person):
    who = load_record(person("updater"), labs=1, vaccines=0, allergies=0, meds=0)
    before = who.fhir.read(who.ref)
    changed = {k: v for k, v in before.items() if k != "meta"}
    changed["gender"] = "other" if before.get("gender") != "other" else "female"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": changed, "request": {"method": "PUT", "url": who.ref}},
        {"resource": contact(who.ref), "request": {"method": "POST", "url": "RelatedPerson"}}]}
    result = who.fhir.transaction(bundle)
    [entry] = answered(result, "Patient")
    after = who.fhir.read(who.ref)
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert after["gender"] == changed["gender"]
    assert [c["name"]["text"] for c in after["contact"]] == ["Pat Partner"]
    assert entry["response"]["etag"] == f'W/"{after["meta"]["versionId"]}"'
    assert entry["response"]["lastModified"] == after["meta"]["lastUpdated"] and entry["resource"] == after
    history = body(who.fhir.get(f"{who.ref}/_history"))
    assert sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"]) == \
        list(range(1, int(after["meta"]["versionId"]) + 1))
    # The older version is as it was: no contact, the old gender.
    old = body(who.fhir.get(f"{who.ref}/_history/{before['meta']['versionId']}"))
    assert old == before


def test_a_transaction_adding_only_contacts_gives_the_patient_one_new_version(person):
    who = load_record(person("adder"), labs=1, vaccines=0, allergies=0, meds=0)
    before = who.fhir.read(who.ref)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": contact(who.ref), "request": {"method": "POST", "url": "RelatedPerson"}},
        {"resource": contact(who.ref), "request": {"method": "POST", "url": "RelatedPerson"}}]}
    who.fhir.transaction(bundle)
    after = who.fhir.read(who.ref)
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert len(after["contact"]) == 2
    assert body(who.fhir.get(f"{who.ref}/_history/{before['meta']['versionId']}")) == before


def test_a_transactions_reads_see_the_contacts_it_adds(person):
    """Reads come last in a transaction (R4 http.html#trules) and see its writes, the Patient's contacts too."""
    who = person("reader")
    pid = who.fhir.transaction(synthea.record_bundle(labs=1, vaccines=0, allergies=0, meds=0))[
        "entry"][0]["response"]["location"].split("/")[1]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"fullUrl": synthea.urn(), "resource": contact(f"Patient/{pid}"),
         "request": {"method": "POST", "url": "RelatedPerson"}},
    ]}
    result = who.fhir.transaction(bundle)
    assert [c["name"]["text"] for c in result["entry"][0]["resource"]["contact"]] == ["Pat Partner"]


def test_each_action_of_a_transaction_gets_its_row(alice, db_session):
    """Creates, updates and deletes of one transaction are audited per action; a lone write of its kind
    is the same row a single write outside a Bundle makes (no list)."""
    labs = alice.record["Observation"]
    lab = alice.fhir.read(f"Observation/{labs[0]}")
    new = [synthea.lab(alice.ref, 20 + i, synthea.date(2024, 3, 1 + i)) for i in range(2)]
    entries = [{"fullUrl": synthea.urn(), "resource": r, "request": {"method": "POST", "url": "Observation"}}
               for r in new]
    entries.append({"resource": dict(lab, status="amended"),
                    "request": {"method": "PUT", "url": f"Observation/{labs[0]}"}})
    entries += [{"request": {"method": "DELETE", "url": f"Observation/{rid}"}} for rid in labs[1:3]]
    before = set(db_session.scalars(select(AuditLog.object_id)))
    result = alice.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    made = [e["response"]["location"].split("/")[1] for e in result["entry"][:2]]
    written = db_session.scalars(select(AuditLog).where(AuditLog.object_id.not_in(before))).all()
    rows = {r.action: r for r in written}
    assert len(written) == 3 and set(rows) == {"create", "update", "delete"}
    assert rows["create"].details["entities"] == {"LabResult": made}
    assert rows["delete"].details["entities"] == {"LabResult": labs[1:3]}
    update = rows["update"]
    assert (update.entity_type, update.entity_id, update.details) == ("LabResult", labs[0], None)
    assert update.summary == f"{alice.user_id} update LabResult/{labs[0]}"
    assert {r.profile_id for r in rows.values()} == {alice.patient_id}
    event = alice.fhir.read(f"AuditEvent/{rows['delete'].object_id}")
    assert event["action"] == "D"
    named = [e["what"]["reference"] for e in event["entity"] if "role" not in e]
    assert named == [f"Observation/{i}" for i in labs[1:3]]
