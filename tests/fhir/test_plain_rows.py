"""New records and audit rows go out as plain rows (services/write_buffer.py `add_new`), not through the
Session's flush: the stored row must be the one the ORM would have stored (defaults for what is left out or
None, SQL NULL against JSON null), tables must go in foreign-key order whatever order the records came in,
and what the ORM's flush told the caller cache is still told (tests/native/test_caller_cache.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text

from gateway.models import Allergy, AuditLog, Medication, Profile, Provider, User
from gateway.services import plain_rows, write_buffer
from tests.fhir import synthea

NOW = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
PROFILE = "profileAA1"


def _stored(db_session, model, object_id: str) -> dict:
    table = model.__table__
    row = db_session.execute(select(table).where(table.c.object_id == object_id)).mappings().one()
    # A JSON column holding JSON null and one holding SQL NULL both read back as None here: tell them apart.
    nulls = {c.key: db_session.scalar(text(f"SELECT {c.name} IS NULL FROM {table.name} WHERE object_id = :i"),
                                      {"i": object_id}) for c in table.columns}
    return {k: (v, nulls[k]) for k, v in row.items() if k != "object_id"}


ALLERGY = {"substance": "Peanut", "recorded_at": NOW}
CASES = [
    (Allergy, ALLERGY),                                                        # is_active, fhir, acl left out
    # None: the column's default, SQL NULL, JSON null
    (Allergy, {**ALLERGY, "is_active": None, "notes": None, "fhir": None}),
    (Allergy, {**ALLERGY, "is_active": False, "fhir": {"extension": []}, "acl": {"*": {"read": True}}}),
    (Medication, {"name": "Metformin", "active": None, "dose": "500 mg"}),
    (Provider, {"name": "Dr Who", "kind": None}),
    (AuditLog, {"actor_type": "master", "entity_type": "Allergy", "entity_id": "x", "action": "create",
                "summary": "s", "details": None, "acl": {}}),
]


def _owner(db_session) -> None:
    db_session.add(User(object_id="user000001", created_at=NOW, updated_at=NOW, username="u1",
                        password_hash="x", role="patient"))
    db_session.flush()


@pytest.mark.parametrize("many", [1, plain_rows.COPY_FROM_ROWS + 2], ids=["insert", "copy"])
@pytest.mark.parametrize("model, values", CASES)
def test_a_plain_row_is_what_the_orm_stores(db_session, model, values, many):
    """One row (an INSERT) and several (a COPY on PostgreSQL, with JSON as text) against the ORM's flush."""
    _owner(db_session)
    db_session.add(Profile(object_id=PROFILE, created_at=NOW, updated_at=NOW, full_name="P",
                           user_id="user000001"))
    db_session.flush()
    common = {"created_at": NOW, "updated_at": NOW}
    if model in (Allergy, Medication):
        common["profile_id"] = PROFILE
    db_session.add(model(object_id="viaORM0001", **common, **values))
    db_session.flush()
    with write_buffer.scope(db_session) as buffer:
        for i in range(many):
            buffer.add_new(model(object_id=f"viaBuffer{i}", **common, **values))
    expected = _stored(db_session, model, "viaORM0001")
    for i in range(many):
        assert _stored(db_session, model, f"viaBuffer{i}") == expected


def test_tables_go_in_foreign_key_order(db_session):
    """A record queued before the profile it points to is still written after it."""
    _owner(db_session)
    with write_buffer.scope(db_session) as buffer:
        buffer.add_new(Allergy(object_id="allergy001", created_at=NOW, updated_at=NOW, profile_id=PROFILE,
                               substance="Latex", recorded_at=NOW))
        buffer.add_new(Profile(object_id=PROFILE, created_at=NOW, updated_at=NOW, full_name="P",
                               user_id="user000001"))
    assert db_session.get(Allergy, "allergy001").profile_id == PROFILE


def test_a_record_pointing_to_a_pending_object_waits_for_it(db_session):
    """A profile for an account the Session has not written yet: the account goes first."""
    db_session.add(User(object_id="user000001", created_at=NOW, updated_at=NOW, username="u1",
                        password_hash="x", role="patient"))
    with write_buffer.scope(db_session) as buffer:
        buffer.add_new(Profile(object_id=PROFILE, created_at=NOW, updated_at=NOW, full_name="P",
                               user_id="user000001"))
    assert db_session.get(Profile, PROFILE).user_id == "user000001"


def test_a_transaction_may_name_its_practitioner_after_the_records(fhir_master, person):
    patient = person("ann").fhir.create({"resourceType": "Patient",
                                         "name": [{"family": "Order", "given": ["Ann"]}]})
    practitioner = synthea.urn()
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Immunization", "status": "completed",
                      "patient": {"reference": f"Patient/{patient['id']}"},
                      "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
                      "occurrenceDateTime": "2024-01-02",
                      "performer": [{"actor": {"reference": practitioner}}]},
         "request": {"method": "POST", "url": "Immunization"}},
        {"fullUrl": practitioner, "resource": {"resourceType": "Practitioner", "name": [{"family": "Later"}]},
         "request": {"method": "POST", "url": "Practitioner"}},
    ]}
    result = fhir_master.transaction(bundle)
    immunization = "/".join(result["entry"][0]["response"]["location"].split("/")[:2])
    pra = result["entry"][1]["response"]["location"].split("/")[1]
    assert fhir_master.read(immunization)["performer"][0]["actor"]["reference"] == f"Practitioner/{pra}"
