"""Queries in Parse Server's GraphQL style: get by id (object or global id), the list query with where,
order, first/skip/after and count, nested pointers, viewer and node. Reads run through run_query, so the
REST face and this one see the same rows."""
import base64

from tests.graphql.conftest import codes

LIST = """
query($where: AllergyWhereInput, $order: [AllergyOrder!], $first: Int, $skip: Int, $after: String) {
  allergies(where: $where, order: $order, first: $first, skip: $skip, after: $after) {
    count
    edges { cursor node { objectId substance severity isActive } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""


def substances(answer):
    return [e["node"]["substance"] for e in answer["allergies"]["edges"]]


def test_list_with_order_and_count(alice):
    out = alice["gql"].data(LIST, {"order": ["substance_ASC"]})
    assert substances(out) == ["Milk", "Peanut", "Pollen"]
    assert out["allergies"]["count"] == 3
    assert out["allergies"]["pageInfo"] == {"hasNextPage": False, "hasPreviousPage": False,
                                            "endCursor": out["allergies"]["edges"][-1]["cursor"]}
    out = alice["gql"].data(LIST, {"order": ["severity_DESC"]})
    assert substances(out) == ["Peanut", "Pollen", "Milk"]  # severe, moderate, mild


def test_where_operators(alice):
    q = alice["gql"].data
    assert substances(q(LIST, {"where": {"substance": {"equalTo": "Milk"}}})) == ["Milk"]
    assert substances(q(LIST, {"where": {"substance": {"notEqualTo": "Milk"}}, "order": ["substance_ASC"]})) == [
        "Peanut", "Pollen"]
    assert substances(q(LIST, {"where": {"substance": {"in": ["Milk", "Pollen"]}}, "order": ["substance_DESC"]})) == [
        "Pollen", "Milk"]
    assert substances(q(LIST, {"where": {"substance": {"matchesRegex": "^p", "options": "i"}},
                               "order": ["substance_ASC"]})) == ["Peanut", "Pollen"]
    assert substances(q(LIST, {"where": {"isActive": {"equalTo": False}}})) == ["Milk"]
    assert substances(q(LIST, {"where": {"substance": {"greaterThan": "Milk", "lessThan": "Pollen"}}})) == ["Peanut"]
    assert substances(q(LIST, {"where": {"OR": [{"substance": {"equalTo": "Milk"}},
                                                {"severity": {"equalTo": "severe"}}]},
                               "order": ["substance_ASC"]})) == ["Milk", "Peanut"]
    assert substances(q(LIST, {"where": {"notes": {"exists": True}}})) == []
    later = q(LIST, {"where": {"createdAt": {"greaterThan": "2000-01-01T00:00:00.000Z"}}})
    assert len(substances(later)) == 3


def test_where_on_a_pointer_uses_a_subquery(alice):
    where = {"profile": {"have": {"fullName": {"equalTo": "Alice Example"}}}, "severity": {"equalTo": "mild"}}
    assert substances(alice["gql"].data(LIST, {"where": where})) == ["Milk"]
    where = {"profile": {"have": {"fullName": {"equalTo": "Someone Else"}}}}
    assert substances(alice["gql"].data(LIST, {"where": where})) == []


def test_first_skip_after_pages(alice):
    q = alice["gql"].data
    page1 = q(LIST, {"order": ["substance_ASC"], "first": 2})["allergies"]
    assert [e["node"]["substance"] for e in page1["edges"]] == ["Milk", "Peanut"]
    assert page1["pageInfo"]["hasNextPage"] is True and page1["count"] == 3
    page2 = q(LIST, {"order": ["substance_ASC"], "first": 2, "after": page1["pageInfo"]["endCursor"]})["allergies"]
    assert [e["node"]["substance"] for e in page2["edges"]] == ["Pollen"]
    assert page2["pageInfo"]["hasNextPage"] is False and page2["pageInfo"]["hasPreviousPage"] is True
    assert substances(q(LIST, {"order": ["substance_ASC"], "skip": 1, "first": 1})) == ["Peanut"]
    last = q("{ allergies(order: [substance_ASC], last: 1) { edges { node { substance } } } }")
    assert substances(last) == ["Pollen"]
    assert codes(alice["gql"](LIST, {"first": -1})) == [102]
    assert codes(alice["gql"](LIST, {"after": "not-a-cursor"})) == [102]


def test_count_alone_fetches_no_rows(alice):
    out = alice["gql"].data('{ allergies(where: {severity: {equalTo: "severe"}}) { count } }')
    assert out == {"allergies": {"count": 1}}


def test_nested_pointer_objects(alice):
    out = alice["gql"].data("""{
      allergies(order: [substance_ASC], first: 1) { edges { node {
        substance profile { objectId fullName user { objectId username } } } } } }""")
    node = out["allergies"]["edges"][0]["node"]
    assert node["profile"] == {"objectId": alice["pid"], "fullName": "Alice Example",
                               "user": {"objectId": alice["uid"], "username": "alice"}}


def test_nested_pointer_through_fragments(alice):
    out = alice["gql"].data("""
      query { allergy(id: "%s") { ...A } }
      fragment A on Allergy { substance ... on Allergy { profile { fullName } } }""" % alice["ids"]["milk"])
    assert out["allergy"] == {"substance": "Milk", "profile": {"fullName": "Alice Example"}}


def test_get_by_object_id_and_global_id(alice):
    oid = alice["ids"]["peanut"]
    out = alice["gql"].data('{ allergy(id: "%s") { id objectId substance createdAt updatedAt ACL { users { read write } public { read } } } }' % oid)
    allergy = out["allergy"]
    assert allergy["objectId"] == oid and allergy["substance"] == "Peanut"
    assert base64.b64decode(allergy["id"]).decode() == f"Allergy:{oid}"
    assert allergy["createdAt"].endswith("Z") and "T" in allergy["createdAt"]
    assert allergy["ACL"]["public"] is None and allergy["ACL"]["users"] == [{"read": True, "write": True}]
    again = alice["gql"].data('{ allergy(id: "%s") { objectId } }' % allergy["id"])
    assert again["allergy"]["objectId"] == oid
    node = alice["gql"].data('{ node(id: "%s") { id ... on Allergy { substance } } }' % allergy["id"])
    assert node["node"] == {"id": allergy["id"], "substance": "Peanut"}


def test_get_missing_object_is_101(alice):
    answer = alice["gql"]('{ allergy(id: "nothere123") { objectId } }')
    assert answer["data"] is None
    assert codes(answer) == [101] and answer["errors"][0]["message"] == "Object not found."
    assert answer["errors"][0]["path"] == ["allergy"]


def test_viewer(alice, master_gql):
    out = alice["gql"].data("{ viewer { sessionToken user { objectId username role } } }")
    assert out["viewer"] == {"sessionToken": alice["rest"].token,
                             "user": {"objectId": alice["uid"], "username": "alice", "role": "patient"}}
    assert codes(master_gql("{ viewer { sessionToken } }")) == [209]


def test_master_key_sees_everything(alice, master_gql):
    out = master_gql.data("{ allergies { count } medications { count } profiles { count } }")
    assert out == {"allergies": {"count": 3}, "medications": {"count": 1}, "profiles": {"count": 1}}


def test_file_field_and_arrays(alice, upload_file):
    stored = upload_file(alice["rest"])
    made = alice["gql"].data("""mutation($f: CreateMedicalDocumentFieldsInput) {
      createMedicalDocument(input: {fields: $f}) { medicalDocument { objectId file { name url } tags version } } }""",
        {"f": {"profile": {"link": alice["pid"]}, "file": {"file": stored["name"]}, "documentType": "Lab report",
               "title": "Panel", "tags": ["lab", "2025"]}})["createMedicalDocument"]["medicalDocument"]
    assert made["file"]["name"] == stored["name"] and made["file"]["url"].startswith("http://testserver/parse/files/")
    assert made["tags"] == ["lab", "2025"] and made["version"] == 1
    found = alice["gql"].data('{ medicalDocuments(where: {tags: {contains: ["lab"]}}) { count } }')
    assert found["medicalDocuments"]["count"] == 1
