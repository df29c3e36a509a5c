"""The access policy through GraphQL: another user sees and changes nothing (as if nothing were there),
a provider with an active SharedAccess for allergies sees that profile's allergies only, anonymous callers
are refused, and nested pointers never reach past the policy."""
import pytest

from tests.conftest import pointer
from tests.graphql.conftest import GraphQL, codes, gql_of

COUNTS = "{ allergies { count edges { node { objectId } } } medications { count } profiles { count } }"


@pytest.fixture
def bob(signup):
    uid, rest = signup("bob")
    return {"uid": uid, "gql": gql_of(rest)}


@pytest.fixture
def doctor(provider_user):
    uid, provider_id, rest = provider_user("dr.who")
    return {"uid": uid, "provider": provider_id, "gql": gql_of(rest)}


def test_another_user_sees_nothing(alice, bob):
    out = bob["gql"].data(COUNTS)
    assert out == {"allergies": {"count": 0, "edges": []}, "medications": {"count": 0}, "profiles": {"count": 0}}
    answer = bob["gql"]('{ allergy(id: "%s") { substance } }' % alice["ids"]["peanut"])
    assert codes(answer) == [101] and answer["errors"][0]["message"] == "Object not found."
    assert codes(bob["gql"]('{ profile(id: "%s") { fullName } }' % alice["pid"])) == [101]


@pytest.mark.parametrize("mutation", [
    'updateAllergy(input: {id: "%(id)s", fields: {notes: "hacked"}}) { allergy { objectId } }',
    'deleteAllergy(input: {id: "%(id)s"}) { allergy { objectId } }',
    'deleteAllergy(input: {id: "%(id)s"}) { allergy { substance } }',
])
def test_another_user_cannot_update_or_delete(alice, bob, mutation):
    oid = alice["ids"]["peanut"]
    answer = bob["gql"]("mutation { %s }" % (mutation % {"id": oid}))
    assert codes(answer) == [101] and answer["errors"][0]["message"] == "Object not found."
    after = alice["rest"].get(f"/classes/Allergy/{oid}").json
    assert after["substance"] == "Peanut" and "notes" not in after


def test_another_user_cannot_write_into_someone_elses_profile(alice, bob):
    answer = bob["gql"]("""mutation { createAllergy(input: {fields: {profile: {link: "%s"}, substance: "X",
        severity: "mild", reaction: "Y"}}) { allergy { objectId } } }""" % alice["pid"])
    assert codes(answer) == [119]
    assert alice["gql"].data("{ allergies { count } }")["allergies"]["count"] == 3


@pytest.mark.parametrize("via", ["grantee", "provider"])
def test_provider_with_an_allergies_grant_sees_allergies_only(alice, doctor, share, via):
    if via == "grantee":
        share(alice["rest"], alice["pid"], doctor["uid"], scope=["allergies"])
    else:
        share(alice["rest"], alice["pid"], provider=pointer("Provider", doctor["provider"]), scope=["allergies"])
    out = doctor["gql"].data(COUNTS)
    assert out["allergies"]["count"] == 3 and len(out["allergies"]["edges"]) == 3
    assert out["medications"] == {"count": 0}
    assert out["profiles"] == {"count": 1}  # the grantee always sees the patient it was granted
    assert codes(doctor["gql"]('{ medication(id: "%s") { name } }' % alice["ids"]["med"])) == [101]
    nested = doctor["gql"].data('{ allergy(id: "%s") { substance profile { fullName user { username } } } }'
                                % alice["ids"]["peanut"])
    # The profile is visible; its owner's account is not: the pointer shows as null, never leaked.
    assert nested["allergy"] == {"substance": "Peanut", "profile": {"fullName": "Alice Example", "user": None}}
    # A read grant does not allow writing.
    answer = doctor["gql"]('mutation { updateAllergy(input: {id: "%s", fields: {notes: "x"}}) { allergy { objectId } } }'
                           % alice["ids"]["peanut"])
    assert codes(answer) == [101]


def test_a_revoked_grant_shows_nothing(alice, doctor, share):
    grant = share(alice["rest"], alice["pid"], doctor["uid"], scope=["allergies"])
    assert doctor["gql"].data("{ allergies { count } }")["allergies"]["count"] == 3
    alice["gql"].data('mutation { updateSharedAccess(input: {id: "%s", fields: {revokedAt: "2020-01-01T00:00:00Z"}}) '
                      '{ sharedAccess { revokedAt } } }' % grant)
    assert doctor["gql"].data("{ allergies { count } }")["allergies"]["count"] == 0


def test_reads_by_a_grantee_are_audited(alice, doctor, share, rows_of):
    share(alice["rest"], alice["pid"], doctor["uid"], scope=["allergies"])
    before = rows_of(action="read")
    doctor["gql"].data("{ allergies { edges { node { objectId } } } }")
    assert rows_of(action="read") > before


@pytest.mark.parametrize("query", [
    "{ allergies { count } }",
    '{ allergy(id: "abcdefghij") { objectId } }',
    'mutation { createAllergy(input: {fields: {substance: "X"}}) { allergy { objectId } } }',
])
def test_anonymous_gets_an_authentication_error(alice, gql, query):
    answer = gql(query)
    assert not any((answer["data"] or {}).values())
    assert codes(answer) == [101]
    assert "needs to be authenticated" in answer["errors"][0]["message"]


def test_anonymous_viewer_and_bad_session_token(client, gql):
    assert codes(gql("{ viewer { sessionToken } }")) == [209]
    answer = GraphQL(client, token="r:not-a-token")("{ health }", status=400)
    assert codes(answer) == [209] and answer["errors"][0]["message"] == "Invalid session token"
