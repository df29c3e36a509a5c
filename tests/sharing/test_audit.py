"""The audit trail: exactly one entry per access by someone other than the owner and per write (counted),
AuditEvent search on FHIR, the owner reading her profiles' trail, append-only on every face, and no health
data in any entry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import select

from gateway.graphql.types import build
from gateway.models import AuditLog, FhirResource
from tests.conftest import date, pointer
from tests.fhir.conftest import Fhir, body
from tests.native.conftest import VALID, ok
from tests.sharing.helpers import entry_ids, grant_body

HEALTH_WORDS = ("Peanut-7731", "Hives-5521", "Glucose-4409", "Marchetti", "555 0199")


@pytest.fixture
def scene(client, signup, make_profile, make_record, provider_user):
    alice_uid, alice = signup("alice")
    pid = make_profile(alice, "Alice Q. Marchetti")
    allergy = make_record(alice, "Allergy", pid, substance="Peanut-7731", reaction="Hives-5521")
    lab = make_record(alice, "LabResult", pid, testName="Glucose-4409")
    dr_uid, prov, dr = provider_user("dr.audit")
    gid = ok(alice.post("/classes/SharedAccess", grant_body(pid, prov, ("allergies", "labs"), "write")), 201)["objectId"]
    return {"alice": alice, "alice_uid": alice_uid, "pid": pid, "allergy": allergy, "lab": lab, "dr": dr,
            "dr_uid": dr_uid, "prov": prov, "gid": gid, "fhir": Fhir(client, alice.token),
            "dr_fhir": Fhir(client, dr.token), "client": client}


def newest(db_session, n: int) -> list[AuditLog]:
    db_session.expire_all()
    return list(reversed(db_session.scalars(select(AuditLog).order_by(AuditLog.created_at.desc(),
                                                                     AuditLog.object_id.desc()).limit(n)).all()))


# ---- exactly one entry per access by a non-owner, per write ----

ACCESSES = {
    # name: (who, request, entity type, entity id or "query")
    "native get": ("dr", lambda s: s["dr"].get(f"/classes/Allergy/{s['allergy']}"), "Allergy", "allergy"),
    "native query": ("dr", lambda s: s["dr"].get("/classes/LabResult"), "LabResult", "lab"),
    "native include": ("dr", lambda s: s["dr"].get("/classes/LabResult", params={"include": "profile"}), "LabResult", "query"),
    "fhir read": ("dr", lambda s: s["dr_fhir"].get(f"AllergyIntolerance/{s['allergy']}"), "Allergy", "allergy"),
    "fhir search": ("dr", lambda s: s["dr_fhir"].get("Observation"), "LabResult", "lab"),
    "fhir _revinclude": ("dr", lambda s: s["dr_fhir"].get("Patient", {"_revinclude": "AllergyIntolerance:patient"}), "Profile", "query"),
    "fhir $everything": ("dr", lambda s: s["dr_fhir"].get(f"Patient/{s['pid']}/$everything"), "Profile", "query"),
    "fhir history": ("dr", lambda s: s["dr_fhir"].get(f"Observation/{s['lab']}/_history"), "LabResult", "lab"),
}


@pytest.mark.parametrize("name", list(ACCESSES))
def test_a_non_owner_access_writes_exactly_one_entry(scene, audit_count, db_session, name):
    s = scene
    who, call, entity_type, entity = ACCESSES[name]
    before = audit_count()
    r = call(s)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert audit_count() == before + 1
    (row,) = newest(db_session, 1)
    assert (row.action, row.actor_id, row.profile_id, row.entity_type) == ("read", s["dr_uid"], s["pid"], entity_type)
    assert row.entity_id == (s[entity] if entity in s else entity)
    event = orjson.loads(db_session.get(FhirResource, ("AuditEvent", row.object_id)).body)
    assert event["action"] == "R"
    assert event["agent"][0]["who"]["identifier"]["value"] == s["dr_uid"]
    assert {"reference": f"Patient/{s['pid']}"} in [e["what"] for e in event["entity"]]


@pytest.mark.parametrize("name", ["native get", "native query", "fhir read", "fhir search", "fhir $everything"])
def test_the_owner_reading_writes_nothing(scene, audit_count, name):
    s = scene
    owner = {**s, "dr": s["alice"], "dr_fhir": s["fhir"]}
    before = audit_count()
    assert ACCESSES[name][1](owner).status_code == 200
    assert audit_count() == before


WRITES = {
    # name: (request, action, class, writer)
    "owner native create": (lambda s: s["alice"].post("/classes/Medication", {**VALID["Medication"], "profile": pointer("Profile", s["pid"])}), "create", "Medication", "alice_uid"),
    "owner native update": (lambda s: s["alice"].put(f"/classes/Allergy/{s['allergy']}", {"notes": "n"}), "update", "Allergy", "alice_uid"),
    "owner native delete": (lambda s: s["alice"].delete(f"/classes/Allergy/{s['allergy']}"), "delete", "Allergy", "alice_uid"),
    "owner fhir delete": (lambda s: s["fhir"].delete(f"Observation/{s['lab']}"), "delete", "LabResult", "alice_uid"),
    "owner share": (lambda s: s["alice"].post("/classes/SharedAccess", grant_body(s["pid"], s["prov"])), "share", "SharedAccess", "alice_uid"),
    "owner revoke": (lambda s: s["alice"].put(f"/classes/SharedAccess/{s['gid']}", {"revokedAt": date("2025-01-01T00:00:00.000Z")}), "revoke", "SharedAccess", "alice_uid"),
    "provider native create": (lambda s: s["dr"].post("/classes/LabResult", {**VALID["LabResult"], "profile": pointer("Profile", s["pid"])}), "create", "LabResult", "dr_uid"),
    "provider native update": (lambda s: s["dr"].put(f"/classes/LabResult/{s['lab']}", {"units": "mmol/L"}), "update", "LabResult", "dr_uid"),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_writes_exactly_one_entry(scene, audit_count, db_session, name):
    s = scene
    call, action, cls, writer = WRITES[name]
    before = audit_count()
    r = call(s)
    assert r.status_code in (200, 201, 204), r.get_data(as_text=True)[:500]
    assert audit_count() == before + 1
    (row,) = newest(db_session, 1)
    assert (row.action, row.entity_type, row.actor_id, row.profile_id) == (action, cls, s[writer], s["pid"])


# ---- AuditEvent on FHIR ----

def test_audit_event_search(scene):
    s = scene
    assert s["dr"].get(f"/classes/Allergy/{s['allergy']}").status_code == 200  # one read by the provider
    f = s["fhir"]
    everything = entry_ids(body(f.get("AuditEvent", {"_count": "1000"})))
    by_patient = entry_ids(body(f.get("AuditEvent", {"patient": f"Patient/{s['pid']}", "_count": "1000"})))
    assert by_patient and by_patient <= everything
    reads = entry_ids(body(f.get("AuditEvent", {"patient": f"Patient/{s['pid']}", "action": "R"})))
    entity = entry_ids(body(f.get("AuditEvent", {"entity": f"AllergyIntolerance/{s['allergy']}"})))
    assert reads and entity and reads & entity
    today = datetime.now(timezone.utc).date()
    assert entry_ids(body(f.get("AuditEvent", {"date": f"ge{today.isoformat()}", "_count": "1000"}))) == everything
    tomorrow = (today + timedelta(days=2)).isoformat()
    assert entry_ids(body(f.get("AuditEvent", {"date": f"ge{tomorrow}"}))) == set()
    # creates of this patient's records
    creates = entry_ids(body(f.get("AuditEvent", {"patient": f"Patient/{s['pid']}", "action": "C"})))
    assert len(creates) >= 3  # the profile, allergy and lab (the share is a C too)


def test_a_patient_reads_only_her_own_trail(scene, signup):
    s = scene
    _, bob = signup("bob")
    bob_fhir = Fhir(s["client"], bob.token)
    mine = entry_ids(body(s["fhir"].get("AuditEvent", {"patient": f"Patient/{s['pid']}", "_count": "1000"})))
    assert mine
    assert entry_ids(body(bob_fhir.get("AuditEvent", {"patient": f"Patient/{s['pid']}"}))) == set()
    assert all(bob_fhir.get(f"AuditEvent/{i}").status_code == 404 for i in list(mine)[:5])
    assert ok(bob.get("/classes/AuditLog", params={"where": {"profile": pointer("Profile", s["pid"])}}))["results"] == []


def test_append_only_on_every_face(scene, db_session):
    s = scene
    row = newest(db_session, 1)[0]
    event = body(s["fhir"].get(f"AuditEvent/{row.object_id}"))
    for who in (s["fhir"], s["dr_fhir"], Fhir(s["client"], master=True)):
        assert who.put(f"AuditEvent/{row.object_id}", event).status_code == 405
        assert who.delete(f"AuditEvent/{row.object_id}").status_code == 405
        assert who.post("AuditEvent", {k: v for k, v in event.items() if k not in ("id", "meta")}).status_code == 405
    for who in (s["alice"], s["dr"]):
        assert who.put(f"/classes/AuditLog/{row.object_id}", {"summary": "x"}).status_code in (403, 404)
        assert who.delete(f"/classes/AuditLog/{row.object_id}").status_code in (403, 404)
        assert who.post("/classes/AuditLog", {"entityType": "x", "entityId": "y", "action": "read",
                                              "summary": "z"}).status_code in (400, 403)
    db_session.expire_all()
    assert db_session.get(AuditLog, row.object_id).summary != "x"
    # the master key (administration) may amend it, as DESIGN.md says
    master = s["alice"].__class__(s["client"], master=True)
    assert master.put(f"/classes/AuditLog/{row.object_id}", {"summary": "amended by the administrator"}).status_code == 200
    # GraphQL has no mutation for it at all
    mutations = build().mutation_type.fields
    assert not [m for m in mutations if "AuditLog" in m]
    assert "createAllergy" in mutations


def test_no_health_data_in_any_entry(scene, db_session):
    s = scene
    s["dr"].get("/classes/Allergy")
    s["dr_fhir"].get(f"Patient/{s['pid']}/$everything")
    s["alice"].post("/classes/EmergencyContact", {**VALID["EmergencyContact"], "profile": pointer("Profile", s["pid"])})
    s["alice"].put(f"/classes/Allergy/{s['allergy']}", {"reaction": "Hives-5521 worse"})
    db_session.expire_all()
    rows = db_session.scalars(select(AuditLog)).all()
    events = db_session.scalars(select(FhirResource.body).where(FhirResource.resource_type == "AuditEvent")).all()
    assert len(rows) >= 8 and len(events) == len(rows)
    dumped = "\n".join(events) + "\n".join(f"{r.summary} {orjson.dumps(r.details).decode()} {r.entity_type} {r.entity_id}"
                                           for r in rows)
    for word in HEALTH_WORDS:
        assert word not in dumped, word
    # a sample entry holds only ids and types
    event = orjson.loads(events[-1])
    allowed = {"resourceType", "id", "meta", "type", "subtype", "action", "recorded", "agent", "source", "entity"}
    assert set(event) <= allowed


def test_audit_event_search_by_agent(scene):
    s = scene
    assert s["dr"].get(f"/classes/Allergy/{s['allergy']}").status_code == 200
    f = s["fhir"]
    system = f"{f.client.application.config['BASE_URL']}/fhir/identifier/_User"
    bundle = body(f.get("AuditEvent", {"agent:identifier": f"{system}|{s['dr_uid']}"}))
    found = entry_ids(bundle)
    assert found
    agents = {a["who"].get("identifier", {}).get("value") for e in bundle["entry"] for a in e["resource"]["agent"]}
    assert agents == {s["dr_uid"]}  # only that agent's events
    everyone = entry_ids(body(f.get("AuditEvent", {"_count": "1000"})))
    assert set(found) < set(everyone)


def test_an_actor_reads_the_events_of_its_own_actions_and_no_others(scene, signup, db_session):
    """The trail of a profile is its owner's; an actor also sees what it did itself (a doctor its reads and
    writes of Alice's record), nothing else of hers; a stranger sees none of it."""
    s = scene
    assert s["dr"].get(f"/classes/Allergy/{s['allergy']}").status_code == 200
    assert s["dr_fhir"].get(f"Observation/{s['lab']}").status_code == 200
    db_session.expire_all()
    own = set(db_session.scalars(select(AuditLog.object_id).where(AuditLog.actor_id == s["dr_uid"])))
    of_alice = set(db_session.scalars(select(AuditLog.object_id).where(AuditLog.profile_id == s["pid"])))
    assert own & of_alice and of_alice - own  # reads of Alice's data by the doctor, and Alice's own writes
    seen = entry_ids(body(s["dr_fhir"].get("AuditEvent", {"_count": "1000"})))
    assert seen == own
    _, stranger = signup("stranger")
    stranger_fhir = Fhir(s["client"], stranger.token)
    assert entry_ids(body(stranger_fhir.get("AuditEvent", {"_count": "1000"}))) & (own | of_alice) == set()
    assert all(stranger_fhir.get(f"AuditEvent/{i}").status_code == 404 for i in sorted(own)[:3])
