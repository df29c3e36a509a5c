"""create / update / delete mutations through ObjectService: Parse's validation codes, the write path's
versions and audit, and a failed mutation that leaves nothing behind."""
import pytest
from sqlalchemy import func, select

from gateway.models import Allergy, AuditLog, RecordVersion
from tests.graphql.conftest import codes

CREATE = """mutation($fields: CreateAllergyFieldsInput) {
  createAllergy(input: {fields: $fields, clientMutationId: "c1"}) {
    clientMutationId
    allergy { id objectId substance severity isActive recordedAt onsetDate profile { fullName } }
  }
}"""
UPDATE = """mutation($id: ID!, $fields: UpdateAllergyFieldsInput) {
  updateAllergy(input: {id: $id, fields: $fields}) { allergy { objectId substance notes severity updatedAt } }
}"""
DELETE = """mutation($id: ID!) { deleteAllergy(input: {id: $id}) { allergy { objectId substance } } }"""


def count(db_session, model, **where):
    db_session.expire_all()
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return db_session.scalar(stmt)


def test_create_reads_back_through_rest(alice, db_session):
    fields = {"profile": {"link": alice["pid"]}, "substance": "Latex", "severity": "moderate",
              "reaction": "Rash", "onsetDate": "2019-05-01T00:00:00.000Z"}
    out = alice["gql"].data(CREATE, {"fields": fields})["createAllergy"]
    made = out["allergy"]
    assert out["clientMutationId"] == "c1"
    assert made["substance"] == "Latex" and made["isActive"] is True  # the default, as Parse echoes it
    assert made["onsetDate"] == "2019-05-01T00:00:00.000Z" and made["recordedAt"]
    assert made["profile"] == {"fullName": "Alice Example"}
    rest = alice["rest"].get(f"/classes/Allergy/{made['objectId']}").json
    assert rest["substance"] == "Latex" and rest["onsetDate"] == {"__type": "Date", "iso": "2019-05-01T00:00:00.000Z"}
    # a new record keeps no replaced version
    assert count(db_session, RecordVersion, class_name="Allergy", object_id=made["objectId"]) == 0


def test_create_with_a_global_id_link(alice):
    out = alice["gql"].data('{ profile(id: "%s") { id } }' % alice["pid"])
    fields = {"profile": {"link": out["profile"]["id"]}, "substance": "Soy", "severity": "mild", "reaction": "Itch"}
    made = alice["gql"].data(CREATE, {"fields": fields})["createAllergy"]["allergy"]
    assert made["profile"] == {"fullName": "Alice Example"}


def test_update_and_clear(alice, db_session):
    oid = alice["ids"]["milk"]
    out = alice["gql"].data(UPDATE, {"id": oid, "fields": {"notes": "since childhood", "severity": "severe"}})
    assert out["updateAllergy"]["allergy"]["notes"] == "since childhood"
    assert out["updateAllergy"]["allergy"]["severity"] == "severe"
    out = alice["gql"].data(UPDATE, {"id": oid, "fields": {"notes": None}})
    assert out["updateAllergy"]["allergy"]["notes"] is None
    assert "notes" not in alice["rest"].get(f"/classes/Allergy/{oid}").json
    assert count(db_session, RecordVersion, class_name="Allergy", object_id=oid) == 2  # each update keeps one


def test_delete(alice, db_session):
    oid = alice["ids"]["pollen"]
    out = alice["gql"].data(DELETE, {"id": oid})
    assert out["deleteAllergy"]["allergy"] == {"objectId": oid, "substance": "Pollen"}
    assert alice["rest"].get(f"/classes/Allergy/{oid}").status_code == 404
    assert codes(alice["gql"](DELETE, {"id": oid})) == [101]
    assert count(db_session, AuditLog, entity_id=oid, action="delete") == 1


@pytest.mark.parametrize("fields, code", [
    ({"substance": 42}, 111),                                 # a String given a number (variables)
    ({"isActive": "yes"}, 111),                               # a Boolean given a string
    ({"onsetDate": "yesterday"}, 111),                        # not an instant
    ({"severity": "deadly"}, 142),                            # not one of mild/moderate/severe
    ({"substance": "X", "severity": "mild", "reaction": "Y"}, 142),  # the profile is required
])
def test_create_validation_errors(alice, db_session, fields, code):
    before = count(db_session, Allergy)
    body = {"profile": {"link": alice["pid"]}, "substance": "X", "severity": "mild", "reaction": "Y", **fields}
    if code == 142 and "reaction" in fields:
        body.pop("profile")
    answer = alice["gql"](CREATE, {"fields": body}, status=400 if code == 111 else 200)
    assert codes(answer) == [code], answer
    assert answer["errors"][0]["message"]
    assert count(db_session, Allergy) == before


def test_literal_of_the_wrong_type_is_111(alice):
    answer = alice["gql"]('mutation { updateAllergy(input: {id: "%s", fields: {isActive: "no"}}) '
                          '{ allergy { objectId } } }' % alice["ids"]["milk"], status=400)
    assert codes(answer) == [111]


def test_mixed_value_of_the_wrong_type_is_111(alice):
    q = """mutation($f: CreateLabResultFieldsInput) { createLabResult(input: {fields: $f}) { labResult { value } } }"""
    base = {"profile": {"link": alice["pid"]}, "testName": "Glucose", "date": "2025-09-20T00:00:00.000Z"}
    assert alice["gql"].data(q, {"f": {**base, "value": 98}})["createLabResult"]["labResult"]["value"] == 98
    assert alice["gql"].data(q, {"f": {**base, "value": "neg"}})["createLabResult"]["labResult"]["value"] == "neg"
    answer = alice["gql"](q, {"f": {**base, "value": True}})
    assert codes(answer) == [111] and "schema mismatch" in answer["errors"][0]["message"]


def test_a_failed_mutation_leaves_nothing_and_the_others_stand(alice, db_session):
    q = """mutation {
      ok: createAllergy(input: {fields: {profile: {link: "%s"}, substance: "Egg", severity: "mild", reaction: "Hives"}}) { allergy { objectId } }
      bad: updateAllergy(input: {id: "%s", fields: {severity: "deadly"}}) { allergy { objectId } }
    }""" % (alice["pid"], alice["ids"]["milk"])
    answer = alice["gql"](q)
    assert answer["data"]["ok"]["allergy"]["objectId"] and answer["data"]["bad"] is None
    assert codes(answer) == [142] and answer["errors"][0]["path"] == ["bad"]
    assert alice["rest"].get(f"/classes/Allergy/{alice['ids']['milk']}").json["severity"] == "mild"
    assert count(db_session, Allergy, substance="Egg") == 1


def test_unknown_field_is_an_invalid_query(alice):
    answer = alice["gql"](CREATE.replace("isActive", "hacked"), {"fields": {}}, status=400)
    assert codes(answer) == [102]


def test_users_have_no_mutations(alice):
    assert codes(alice["gql"]('mutation { deleteUser(input: {id: "%s"}) { clientMutationId } }' % alice["uid"],
                              status=400)) == [102]
