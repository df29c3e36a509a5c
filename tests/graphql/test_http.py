"""The endpoint itself: /parse/graphql beside the native router, POST JSON and GET, the native key checks,
GraphQL's error shape with Parse codes for every failure, and never a 500 page."""
import orjson
import pytest

from gateway import create_app
from tests.conftest import APP_ID, MASTER_KEY
from tests.graphql.conftest import GraphQL, codes


def test_post_json_and_the_native_router_untouched(gql, client):
    assert gql.data("{ health }") == {"health": True}
    assert gql.last.headers["Access-Control-Allow-Origin"] == "*"
    # The native face still answers its own paths, and its 404 for an unknown one.
    r = client.get("/parse/nothing-here", headers={"X-Parse-Application-Id": APP_ID})
    assert r.status_code == 404 and r.json["code"] == 119


def test_get_runs_queries_only(client):
    headers = {"X-Parse-Application-Id": APP_ID}
    r = client.get("/parse/graphql", query_string={"query": "query($x: Boolean!) { health @include(if: $x) }",
                                                   "variables": '{"x": true}'}, headers=headers)
    assert r.status_code == 200 and r.json == {"data": {"health": True}}
    r = client.get("/parse/graphql", query_string={"query": 'mutation { deleteAllergy(input: {id: "x"}) { clientMutationId } }'},
                   headers=headers)
    assert r.status_code == 405 and r.json["errors"][0]["extensions"]["code"] == 102


def test_application_graphql_body(client):
    r = client.post("/parse/graphql", data="{ health }", content_type="application/graphql",
                    headers={"X-Parse-Application-Id": APP_ID})
    assert r.status_code == 200 and r.json == {"data": {"health": True}}


def test_options_preflight(client):
    r = client.open("/parse/graphql", method="OPTIONS")
    assert r.status_code == 200 and "X-Parse-Session-Token" in r.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("headers", [{}, {"X-Parse-Application-Id": "wrong"},
                                     {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": "wrong"}])
def test_bad_keys_are_refused(client, headers):
    answer = GraphQL(client, headers=headers)("{ health }", status=403)
    assert answer == {"errors": [{"message": "unauthorized", "extensions": {"code": 119}}]}


def test_client_keys_are_checked_when_configured(app_config):
    client = create_app({**app_config, "JAVASCRIPT_KEY": "js-key"}).test_client()
    GraphQL(client)("{ health }", status=403)
    assert GraphQL(client, headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Javascript-Key": "js-key"}).data(
        "{ health }") == {"health": True}
    assert GraphQL(client, master=True, headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}).data(
        "{ allergies { count } }") == {"allergies": {"count": 0}}


@pytest.mark.parametrize("body, message", [
    (b"{not json", "Invalid JSON"),
    (b"[]", "The request body must be a JSON object."),
    (b"{}", "A GraphQL request needs a query."),
    (b'{"query": "{ health }", "variables": [1]}', "variables must be a JSON object."),
])
def test_malformed_requests(client, body, message):
    r = client.post("/parse/graphql", data=body, content_type="application/json",
                    headers={"X-Parse-Application-Id": APP_ID})
    assert r.status_code == 400
    assert r.json == {"errors": [{"message": message, "extensions": {"code": 107}}]}


def test_syntax_and_validation_errors(gql):
    assert codes(gql("{ health", status=400)) == [102]
    assert codes(gql("{ nothing }", status=400)) == [102]
    assert codes(gql("query($n: Int) { allergies(first: $n) { count } }", {"n": "ten"}, status=400)) == [111]


def test_an_internal_failure_is_masked(alice, monkeypatch):
    from gateway.graphql import resolvers

    def broken(*_a, **_k):
        raise RuntimeError("secret detail: Peanut")

    monkeypatch.setattr(resolvers, "run_query", broken)
    answer = alice["gql"]("{ allergies { count } health }")
    assert answer["data"] is None or answer["data"].get("allergies") is None
    assert codes(answer) == [1] and answer["errors"][0]["message"] == "Internal server error."
    assert "Peanut" not in orjson.dumps(answer).decode()
    # The request's session is still usable afterwards (the failed field's savepoint was rolled back).
    monkeypatch.undo()
    assert alice["gql"].data("{ allergies { count } }") == {"allergies": {"count": 3}}


def test_introspection_shows_parse_style_names(gql):
    out = gql.data('{ __type(name: "Mutation") { fields { name } } }')
    names = {f["name"] for f in out["__type"]["fields"]}
    assert {"createAllergy", "updateAllergy", "deleteAllergy", "createProfile", "createSharedAccess"} <= names
    out = gql.data('{ __type(name: "AllergyOrder") { enumValues { name } } }')
    assert {"substance_ASC", "substance_DESC", "createdAt_DESC", "id_ASC"} <= {v["name"] for v in out["__type"]["enumValues"]}
