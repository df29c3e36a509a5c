"""A Patient shows its profile's EmergencyContacts, so it is stored again when contacts are written. When the
profile and its contacts are all made in one write scope (a transaction Bundle with a Patient and its
RelatedPersons), the Patient is re-made from what the scope made, not read back, and while its rows still
wait in the write buffer they are rewritten there (services/fhir_store.py). Whichever way it goes, what is
stored must be what re-making the Patient from the database gives."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from sqlalchemy import select

from gateway.access import Principal
from gateway.models import FhirHistory, FhirIndex, FhirResource
from gateway.schema import class_spec
from gateway.services import write_buffer
from gateway.services.fhir_store import FhirStore, native_record
from gateway.services.objects import ObjectService
from mappings import patient as patient_mapping
from tests.conftest import pointer, sent_during
from tests.fhir.test_transaction_writes import _expected_index, _stored_index

#: Every record of these tests is made at the same millisecond: contacts are then ordered by their ids.
SAME_TIME = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)
NAMES = ("Ada Contact", "Bo Contact", "Cy Contact", "Di Contact", "Ed Contact")


@pytest.fixture
def objects(db_session, signup) -> ObjectService:
    uid, _client = signup("contacts")
    return ObjectService(db_session, Principal(user_id=uid, role="patient"), now=lambda: SAME_TIME)


def add_contact(objects: ObjectService, pid: str, name: str) -> str:
    made = objects.create("EmergencyContact", {"profile": pointer("Profile", pid), "name": name,
                                               "relationship": "sibling", "phone": "+1 555 0100"})
    return made.row.object_id


def stored_patient(db_session, pid: str) -> dict:
    return orjson.loads(db_session.get(FhirResource, ("Patient", pid)).body)


def remade_from_the_database(db_session, pid: str) -> dict:
    """The Patient as the profile and contacts the database holds make it (meta aside)."""
    from gateway.models import Profile

    store = FhirStore(db_session)
    record = native_record(db_session, class_spec("Profile"), db_session.get(Profile, pid))
    patient = patient_mapping.to_fhir(record, store.ctx, emergency_contacts=store._contacts(pid))
    return without_meta(patient)


def without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def assert_one_consistent_version(db_session, pid: str) -> dict:
    db_session.expire_all()
    patient = stored_patient(db_session, pid)
    assert without_meta(patient) == remade_from_the_database(db_session, pid)
    assert patient["meta"]["versionId"] == "1"
    history = db_session.scalars(select(FhirHistory).where(FhirHistory.resource_type == "Patient",
                                                          FhirHistory.id == pid)).all()
    assert [(h.version_id, h.method, orjson.loads(h.body)) for h in history] == [(1, "create", patient)]
    assert _stored_index(db_session, "Patient", pid) == _expected_index(patient)  # none left of a first body
    return patient


def test_a_new_patient_is_remade_from_the_contacts_made_with_it_without_reading_them_back(
        db_session, objects, sent):
    with sent_during(sent) as seen, write_buffer.scope(db_session):
        pid = objects.create("Profile", {"fullName": "Alice Example"}).row.object_id
        ids = {add_contact(objects, pid, name): name for name in NAMES}
    patient = assert_one_consistent_version(db_session, pid)
    # made at the same millisecond: ordered by id, as re-making it from the database orders them
    assert [c["name"]["text"] for c in patient["contact"]] == [ids[i] for i in sorted(ids)]
    flat = [" ".join(s.split()).upper() for s in seen]
    assert not [s for s in flat if s.startswith(("UPDATE", "DELETE")) or "FROM EMERGENCY_CONTACT" in s], flat


def test_rows_sent_before_the_contacts_are_rewritten_in_the_database(db_session, objects, sent):
    """A read in the scope sends the rows that wait: the Patient's first version is then in the database,
    and its second making must replace it there (its history row's body, its index rows)."""
    with sent_during(sent) as seen, write_buffer.scope(db_session):
        pid = objects.create("Profile", {"fullName": "Alice Example"}).row.object_id
        add_contact(objects, pid, NAMES[0])
        db_session.execute(select(FhirIndex.pk).limit(1))  # sends what waits
        add_contact(objects, pid, NAMES[1])
    patient = assert_one_consistent_version(db_session, pid)
    assert len(patient["contact"]) == 2
    assert any(" ".join(s.split()).upper().startswith("UPDATE FHIR_HISTORY") for s in seen)


@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_contact_changed_in_the_same_scope_is_read_back(db_session, objects, change):
    """What the scope made is no longer the whole story: the contacts are read from the database."""
    with write_buffer.scope(db_session):
        pid = objects.create("Profile", {"fullName": "Alice Example"}).row.object_id
        first = add_contact(objects, pid, NAMES[0])
        add_contact(objects, pid, NAMES[1])
        if change == "update":
            objects.update("EmergencyContact", first, {"name": "Renamed Contact"})
        else:
            objects.delete("EmergencyContact", first)
    patient = assert_one_consistent_version(db_session, pid)
    shown = sorted(c["name"]["text"] for c in patient["contact"])
    assert shown == (["Bo Contact", "Renamed Contact"] if change == "update" else ["Bo Contact"])


def test_a_profile_changed_in_the_same_scope_is_read_back(db_session, objects):
    with write_buffer.scope(db_session):
        pid = objects.create("Profile", {"fullName": "Alice Example"}).row.object_id
        add_contact(objects, pid, NAMES[0])
        objects.update("Profile", pid, {"fullName": "Alice Renamed"})
    db_session.expire_all()
    patient = stored_patient(db_session, pid)
    assert without_meta(patient) == remade_from_the_database(db_session, pid)
    assert patient["name"][0]["text"] == "Alice Renamed" and len(patient["contact"]) == 1
