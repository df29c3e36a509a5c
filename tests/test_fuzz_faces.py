"""Property-based sweep: hostile values (control characters and NUL, dates at the ends of time, search
prefixes, regexes PostgreSQL refuses, pointers of the wrong shape, JSON 90-1,100 levels deep, random JSON)
sent to every face through the Flask test client: native classes (get, query, create), GraphQL, FHIR (read,
search, create), LiveQuery subscribe and OAuth authorize. None may answer a 5xx (nor GraphQL's or LiveQuery's
code 1, their 'internal error'), and every error is in the face's own format.

Derandomized with a fixed number of examples and no example database, so a run is the same everywhere
(CI included) and leaves nothing in the tree; a few seconds per face and database."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.smart.clients import create_client
from tests.conftest import pointer
from tests.fhir.conftest import FHIR_JSON, Fhir
from tests.graphql.conftest import gql_of
from tests.live.conftest import LiveSocket
from tests.native import conftest as native

make_profile = native.make_profile

SWEEP = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY = ["\x00", "a\x00b", "\r\n", "\x7f", "9999-12-31", "0001-01-01", "9999-12-31T23:59:59-05:00",
         "0001-01-01T00:00:00+05:00", "ge9999-12-31", "lt0001-01-01", "sa9999-12-31", "eb0001-01-01",
         "ap9999-12-31", "(a{1,1000}){1,1000}b", "(?P<x>a)", "(", "\\", "%00", "../..", "Patient/x",
         "' OR 1=1 --",
         "\ud7ff\ue000", "x" * 3000, "", " ", "null", "1e999", "-0", "Ω≈ç√∫"]
#: Text orjson can write (no lone surrogates), control characters included.
text = st.one_of(st.sampled_from(NASTY), st.text(st.characters(exclude_categories=("Cs",)), max_size=20))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), text)
KEYS = ["$regex", "$options", "$in", "$nin", "$all", "$lt", "$gte", "$ne", "$exists", "$or", "$and",
        "__type", "className", "objectId", "iso", "name", "substance", "profile", "tags", "onsetDate"]
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(KEYS), text), inner, max_size=3)),
    max_leaves=8)
pointers = st.fixed_dictionaries({"__type": st.sampled_from(["Pointer", "Object", "Date"]),
                                  "className": st.sampled_from(["Profile", "_User", "Nope"]),
                                  "objectId": json_values})
dates = st.fixed_dictionaries({"__type": st.just("Date"), "iso": st.one_of(text, json_values)})
FIELDS = ["substance", "notes", "onsetDate", "profile", "isActive", "objectId", "createdAt", "severity",
          "tags", "$or", "$and"]
OPS = ["$regex", "$in", "$nin", "$all", "$lt", "$lte", "$gt", "$gte", "$ne", "$eq", "$exists", "$inQuery",
       "$select", "$options"]
constraints = st.one_of(json_values, pointers, dates, st.dictionaries(
    st.sampled_from(OPS), st.one_of(json_values, pointers, dates, st.lists(pointers, max_size=2)),
    max_size=2))
wheres = st.dictionaries(st.sampled_from(FIELDS), constraints, max_size=3)


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


deep_json = st.integers(90, 1100).map(deep)


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("fuzz-alice")
    return client, make_profile(client, "Fuzz Alice")


def native_error(r) -> None:
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:500])
    if r.status_code >= 400:
        assert r.is_json and isinstance(r.json.get("code"), int) and r.json["code"] != 1, r.get_data()[:500]


# ---- native ----

@SWEEP
@given(object_id=text, where=wheres, order=text, keys=text)
def test_native_gets_and_queries(alice, object_id, where, order, keys):
    client, _ = alice
    native_error(client.client.get(f"/parse/classes/Allergy/{object_id}", headers=client.headers()))
    native_error(client.get("/classes/Allergy", {"where": where, "order": order, "keys": keys}))
    native_error(client.get("/classes/MedicalDocument", {"where": where}))


@SWEEP
@given(fields=st.dictionaries(st.sampled_from(["substance", "notes", "onsetDate", "profile", "isActive",
                                               "severity", "reaction", "ACL"]),
                              st.one_of(json_values, pointers, dates), max_size=4),
       raw=st.one_of(deep_json, st.binary(max_size=30)))
def test_native_writes(alice, fields, raw):
    client, pid = alice
    body = {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
            "profile": pointer("Profile", pid), **fields}
    native_error(client.post("/classes/Allergy", body))
    native_error(client.client.post("/parse/classes/Allergy", data=b'{"notes": %s}' % raw,
                                    headers=client.headers(), content_type="application/json"))


# ---- GraphQL ----

QUERY = """query($id: ID!, $w: AllergyWhereInput, $d: Date) {
  allergy(id: $id) { objectId }
  allergies(where: $w) { count }
  dated: allergies(where: {onsetDate: {greaterThan: $d}}) { count }
}"""


@SWEEP
@given(object_id=text, regex=text, when=st.one_of(text, dates), variables=json_values)
def test_graphql(alice, object_id, regex, when, variables):
    client, _ = alice
    gql = gql_of(client)
    for vars_ in ({"id": object_id, "w": {"substance": {"matchesRegex": regex}}, "d": when},
                  {"id": object_id, "w": variables}):
        r = client.client.post("/parse/graphql", data=orjson.dumps({"query": QUERY, "variables": vars_}),
                               headers=gql.headers(), content_type="application/json")
        assert r.status_code < 500, r.get_data(as_text=True)[:500]
        assert all(e.get("extensions", {}).get("code") != 1 for e in r.json.get("errors", [])), r.json


# ---- FHIR ----

def fhir_ok(r) -> None:
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == FHIR_JSON, r.mimetype
    if r.status_code >= 400:
        assert orjson.loads(r.get_data())["resourceType"] == "OperationOutcome"


@SWEEP
@given(rid=text, param=st.sampled_from(["birthdate", "_lastUpdated", "name", "_id", "identifier", "date",
                                        "general-practitioner", "_count", "_sort", "code:text", "_has:x"]),
       value=text)
def test_fhir_reads_and_searches(alice, client, rid, param, value):
    fhir = Fhir(client, alice[0].token)
    fhir_ok(fhir.get(f"Patient/{rid}"))
    fhir_ok(fhir.get("Patient", [(param, value)]))
    fhir_ok(fhir.get("Observation", [(param.replace("birthdate", "date"), value)]))
    for method in ("GET", "DELETE"):
        fhir_ok(fhir.post("", {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": method, "url": f"Patient/{rid}"}},
            {"request": {"method": "GET", "url": f"Patient?{param}={value}"}}]}))


@SWEEP
@given(element=st.sampled_from(["effectiveDateTime", "valueQuantity", "status", "subject", "category",
                                "code", "issued", "extension", "note", "_status", "id"]),
       value=st.one_of(json_values, text), raw=deep_json)
def test_fhir_writes(alice, client, element, value, raw):
    parse, pid = alice
    fhir = Fhir(client, parse.token)
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "Glucose"},
                "subject": {"reference": f"Patient/{pid}"}, element: value}
    fhir_ok(fhir.post("Observation", resource))
    fhir_ok(fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": resource, "request": {"method": "POST", "url": "Observation"}}]}))
    fhir_ok(fhir.request("POST", "Observation", data=b'{"resourceType": "Observation", "note": %s}' % raw))


# ---- LiveQuery ----

@pytest.fixture
def hub(app):
    hub = app.extensions["phr_live"]
    yield hub
    hub.stop()


@SWEEP
@given(where=wheres, message=json_values)
@example(where={"profile": {"__type": "Pointer", "className": "Profile", "objectId": {"a": 1}}}, message=None)
@example(where={"substance": {"$regex": "(a{1,1000}){1,1000}b"}}, message=None)
def test_live_query_subscribe(alice, hub, where, message):
    client, _ = alice
    ws = LiveSocket(hub)
    assert ws.connect(client.token)["op"] == "connected"
    for sent in ({"op": "subscribe", "requestId": 1, "query": {"className": "Allergy", "where": where}},
                 message):
        ws.client.handle(orjson.dumps(sent))  # an exception here is the WebSocket's 500
        assert ws.received[-1]["op"] in ("subscribed", "error"), ws.received[-1]


# ---- OAuth authorize ----

@pytest.fixture
def app_config(app_config):
    """At http://localhost, where OAuth over plain http is allowed (as tests/smart/conftest.py)."""
    return {**app_config, "BASE_URL": "http://localhost"}


@pytest.fixture
def registered(db_session) -> str:
    made = create_client(db_session, "Fuzz", auth_method="none", redirect_uris=["https://app.example.org/cb"],
                         scope=None, jwks=None, jwks_url=None, provider_id=None)
    db_session.commit()
    return made.row.client_id


@SWEEP
@given(params=st.fixed_dictionaries({"response_type": st.sampled_from(["code", "token"])}, optional={
    name: text for name in ("redirect_uri", "scope", "state", "aud", "code_challenge",
                            "code_challenge_method", "launch")}), other_client=st.one_of(st.none(), text))
def test_oauth_authorize(client, registered, params, other_client):
    params = {**params, "client_id": registered if other_client is None else other_client}
    answers = (client.get("/oauth/authorize", query_string=params),
               client.post("/oauth/authorize", data=params))
    for r in answers:
        assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])
        assert r.status_code != 302 or "\n" not in r.headers.get("Location", "")
