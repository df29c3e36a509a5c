"""Bad input gets a 4xx in the face's own format, never a 500, on every face the value reaches (native REST,
GraphQL, FHIR, LiveQuery): dates at the ends of time, the NUL character, `$regex` on a field that holds no
text or a pattern one database refuses or that runs too long, a Pointer whose objectId is not a string, and
JSON nested 1,000 deep. (The OAuth authorize endpoint's cases are in tests/smart/test_authorize_input.py; the
property-based sweep over every face in tests/test_fuzz_faces.py.)"""
from __future__ import annotations

import pytest

from gateway import regexes
from gateway.services.inputs import MAX_JSON_DEPTH
from tests.conftest import pointer
from tests.fhir.conftest import FHIR_JSON, Fhir, body
from tests.graphql.conftest import codes, gql_of
from tests.live.conftest import LiveSocket
from tests.native import conftest as native
from tests.native.conftest import ok, parse_error

# The native tests' fixtures, shared.
make_profile, make_record = native.make_profile, native.make_record


@pytest.fixture
def alice(signup, make_profile):
    uid, client = signup("alice")
    return client, make_profile(client, "Alice Example")


@pytest.fixture
def hub(app):
    hub = app.extensions["phr_live"]
    yield hub
    hub.stop()


@pytest.fixture
def subscribe(hub, alice):
    """subscribe(where) -> the LiveQuery answer to a subscription to Allergy with that where."""
    client, _ = alice
    ws = LiveSocket(hub)
    assert ws.connect(client.token)["op"] == "connected"
    return lambda where: ws.subscribe(1, "Allergy", where)


def allergy(pid: str, **fields) -> dict:
    return {"substance": "Peanut", "severity": "severe", "reaction": "Hives",
            "profile": pointer("Profile", pid), **fields}


def date(iso: str) -> dict:
    return {"__type": "Date", "iso": iso}


# ---- dates at the ends of time ----

@pytest.mark.parametrize("iso", ["9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z"])
def test_the_first_and_last_instants_are_stored_and_read_back(alice, iso):
    client, pid = alice
    oid = ok(client.post("/classes/Allergy", allergy(pid, onsetDate=date(iso))), 201)["objectId"]
    assert ok(client.get(f"/classes/Allergy/{oid}"))["onsetDate"] == date(iso)
    between = {"onsetDate": {"$gte": date(iso), "$lte": date(iso)}}
    found = ok(client.get("/classes/Allergy", {"where": between}))
    assert [r["objectId"] for r in found["results"]] == [oid]


@pytest.mark.parametrize("iso", ["9999-12-31T23:00:00.000-05:00", "0001-01-01T00:00:00.000+05:00"])
def test_an_instant_beyond_the_years_1_to_9999_in_utc_is_111(alice, iso):
    client, pid = alice
    err = parse_error(client.post("/classes/Allergy", allergy(pid, onsetDate=date(iso))), 111)
    assert "outside the years 0001-9999" in err["error"]
    parse_error(client.get("/classes/Allergy", {"where": {"onsetDate": {"$lt": date(iso)}}}), 111)


@pytest.fixture
def fhir_alice(alice, client):
    parse, pid = alice
    return Fhir(client, parse.token), pid


def observation(pid: str, effective: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Glucose"},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": effective, "valueString": "high"}


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_fhir_dates_at_the_ends_of_time_are_stored_and_read_back_as_written(fhir_alice, day):
    fhir, pid = fhir_alice
    made = body(fhir.post("Observation", observation(pid, day)), 201)
    assert made["effectiveDateTime"] == day  # year 1 written as 0001, as FHIR's date form requires
    assert body(fhir.get(f"Observation/{made['id']}"))["effectiveDateTime"] == day
    immunization = {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "MMR"},
                    "patient": {"reference": f"Patient/{pid}"}, "occurrenceDateTime": day}
    assert body(fhir.post("Immunization", immunization), 201)["occurrenceDateTime"] == day
    patient = body(fhir.get(f"Patient/{pid}"))
    patient["birthDate"] = day
    assert body(fhir.put(f"Patient/{pid}", patient))["birthDate"] == day
    found = body(fhir.get("Observation", {"date": day}))
    assert [e["resource"]["id"] for e in found["entry"]] == [made["id"]]


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_fhir_instant_beyond_the_years_1_to_9999_in_utc_is_refused(fhir_alice, when):
    fhir, pid = fhir_alice
    r = fhir.post("Observation", observation(pid, when))
    assert "outside the years 0001-9999" in body(r, 422)["issue"][0]["diagnostics"]


@pytest.mark.parametrize("param", ["birthdate", "_lastUpdated"])
@pytest.mark.parametrize("value", [
    "ge9999-12-31", "gt9999-12-31", "le9999-12-31", "sa9999-12-31", "eb9999-12-31", "ap9999-12-31",
    "lt0001-01-01", "eb0001-01-01", "sa0001-01-01", "ap0001-01-01", "9999-12-31T23:59:59Z",
    "ge9999-12-31T23:00:00-14:00", "le0001-01-01T00:00:00%2B14:00", "ap9999-12-31T23:59:59-05:00",
])
def test_fhir_date_searches_at_the_ends_of_time(fhir_alice, param, value):
    fhir, pid = fhir_alice
    found = body(fhir.get(f"Patient?{param}={value}"))
    assert found["type"] == "searchset"


@pytest.mark.parametrize("value", ["ge9999-12-31", "sa9999-12-31", "eb0001-01-01", "ap9999-12-31"])
def test_period_ends_at_the_ends_of_time(fhir_alice, value):
    fhir, _ = fhir_alice
    assert body(fhir.get(f"Consent?period={value}"))["type"] == "searchset"


def test_year_one_renders_as_valid_fhir_in_every_serialiser():
    from datetime import UTC, datetime

    from gateway.services import codec
    from mappings import native

    first = datetime(1, 1, 1, tzinfo=UTC)
    assert native.fhir_date(date("0001-01-01T00:00:00.000Z")) == "0001-01-01"
    assert native.fhir_datetime(date("0001-01-01T00:00:00.000Z")) == "0001-01-01"
    assert native.fhir_instant(date("0001-01-01T00:00:01.000Z")) == "0001-01-01T00:00:01Z"
    assert native.fhir_instant(date("0001-01-01T00:00:01.500Z")) == "0001-01-01T00:00:01.500Z"
    assert native.iso(datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC)) == "0999-03-04T05:06:07.000Z"
    assert codec.iso(first) == "0001-01-01T00:00:00.000Z"


# ---- the NUL character ----

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_nul_in_a_native_object_id_is_400(alice, method):
    client, _ = alice
    body = {"notes": "x"} if method == "PUT" else None
    parse_error(client.request(method, "/classes/Allergy/a%00b", body), 107)


def test_nul_in_native_parameters_is_400(alice):
    client, _ = alice
    parse_error(client.get("/classes/Allergy", {"order": "substance\x00"}), 107)
    parse_error(client.get("/classes/Allergy", {"where": {"objectId": "a\x00b"}}), 102)


def test_nul_in_a_graphql_object_id_is_an_error_not_an_internal_one(alice):
    client, _ = alice
    out = gql_of(client)('query { allergy(id: "a\\u0000b") { objectId } }')
    assert out["errors"] and 1 not in codes(out), out


@pytest.mark.parametrize("path", ["Patient/a%00b", "Patient/a%00b/_history", "Patient?name=a%00b",
                                  "Patient?_id=a%00b", "Patient?name%00=a", "Observation?code=x|a%00"])
def test_nul_in_a_fhir_id_or_search_is_400(fhir_alice, path):
    fhir, _ = fhir_alice
    outcome = body(fhir.get(path), 400)
    assert "NUL" in outcome["issue"][0]["diagnostics"]


def test_nul_in_a_fhir_post_search_is_400(fhir_alice, client):
    fhir, _ = fhir_alice
    r = client.post("/fhir/Patient/_search", data={"name": "a\x00b"}, headers=fhir.headers())
    assert r.status_code == 400 and r.mimetype == FHIR_JSON


@pytest.mark.parametrize("method, url", [("GET", "Patient/a\x00b"), ("GET", "Patient?name=a\x00"),
                                         ("DELETE", "Patient/a\x00b")])
def test_nul_in_a_bundle_entry_url_is_400(fhir_alice, method, url):
    fhir, _ = fhir_alice
    entry = {"request": {"method": method, "url": url}}
    batch = body(fhir.post("", {"resourceType": "Bundle", "type": "batch", "entry": [entry]}))
    assert batch["entry"][0]["response"]["status"].startswith("400")
    body(fhir.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}), 400)


def test_nul_in_a_live_query_where_is_102(subscribe):
    reply = subscribe({"substance": "a\x00"})
    assert reply["op"] == "error" and reply["code"] == 102


# ---- $regex ----

@pytest.mark.parametrize("class_name, field", [("MedicalDocument", "tags"), ("SharedAccess", "scope"),
                                               ("Allergy", "onsetDate"), ("Allergy", "isActive"),
                                               ("Allergy", "profile"), ("Provider", "contact"),
                                               ("Allergy", "createdAt")])
def test_regex_on_a_field_that_holds_no_text_is_102(alice, class_name, field):
    client, _ = alice
    err = parse_error(client.get(f"/classes/{class_name}", {"where": {field: {"$regex": "a"}}}), 102)
    assert "only supported on String fields" in err["error"]


def test_regex_on_text_still_works(alice, make_record):
    client, pid = alice
    make_record(client, "Allergy", pid, substance="Peanut")
    make_record(client, "Allergy", pid, substance="Milk")
    found = ok(client.get("/classes/Allergy", {"where": {"substance": {"$regex": "^pea", "$options": "i"}}}))
    assert [r["substance"] for r in found["results"]] == ["Peanut"]


#: Python compiles these; PostgreSQL refuses them (repetition counts above RE_DUP_MAX, 255; a named group).
POSTGRES_REFUSES = ["(a{1,1000}){1,1000}b", "a{256}", "x{0,300}"]


@pytest.mark.parametrize("pattern", POSTGRES_REFUSES + ["(", "a" * (regexes.MAX_PATTERN + 1)])
def test_a_pattern_either_database_refuses_is_102_on_every_face(alice, subscribe, pattern):
    client, _ = alice
    err = parse_error(client.get("/classes/Allergy", {"where": {"substance": {"$regex": pattern}}}), 102)
    assert "Invalid regular expression" in err["error"] or "invalid" in err["error"].lower()
    q = 'query($p: String) { allergies(where: {substance: {matchesRegex: $p}}) { count } }'
    assert codes(gql_of(client)(q, {"p": pattern})) == [102]
    reply = subscribe({"substance": {"$regex": pattern}})
    assert reply["op"] == "error" and reply["code"] == 102, reply


def test_postgresql_is_asked_about_a_pattern_python_accepts(alice, engine):
    client, _ = alice
    r = client.get("/classes/Allergy", {"where": {"substance": {"$regex": "(?P<name>a)"}}})
    if engine.dialect.name == "postgresql":  # ARE has no named groups
        parse_error(r, 102)
    else:
        ok(r)


def test_a_regex_that_runs_too_long_is_a_timeout_not_a_pinned_backend(alice, make_record, monkeypatch):
    client, pid = alice
    monkeypatch.setattr(regexes, "TIME_LIMIT_SECONDS", 0.2)
    make_record(client, "Allergy", pid, notes="a" * 400)
    # Backreferences make both engines try every split: minutes without a limit.
    slow = r"(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1$"
    err = parse_error(client.get("/classes/Allergy", {"where": {"notes": {"$regex": slow}}}), 124)
    assert "Timeout" in err["error"]
    # The request's transaction is left usable: the next request on the same connection is answered.
    assert len(ok(client.get("/classes/Allergy"))["results"]) == 1
    q = 'query($p: String) { allergies(where: {notes: {matchesRegex: $p}}) { count } }'
    assert codes(gql_of(client)(q, {"p": slow})) == [124]


# ---- a Pointer whose objectId is not a string ----

BAD_POINTERS = [{"__type": "Pointer", "className": "Profile", "objectId": {"a": 1}},
                {"__type": "Pointer", "className": "Profile", "objectId": 5},
                {"__type": "Pointer", "className": "Profile", "objectId": ["x"]}]


@pytest.mark.parametrize("bad", BAD_POINTERS)
def test_a_pointer_whose_object_id_is_not_a_string(alice, subscribe, bad):
    client, pid = alice
    err = parse_error(client.post("/classes/Allergy", allergy(pid, profile=bad)), 111)
    assert "objectId must be a String" in err["error"]
    for where in ({"profile": bad}, {"profile": {"$in": [bad]}}, {"profile": {"$ne": bad}}):
        err = parse_error(client.get("/classes/Allergy", {"where": where}), 102)
        assert "profile" in err["error"]
        reply = subscribe(where)
        assert reply["op"] == "error" and reply["code"] == 102, reply


@pytest.mark.parametrize("where", [{"tags": {"$all": [{"a": 1}]}}, {"tags": {"$in": [["x"]]}},
                                   {"tags": pointer("Profile", "x")}, {"file": {"name": 5}}])
def test_array_and_file_constraints_with_values_of_the_wrong_kind_are_102(alice, where):
    client, _ = alice
    parse_error(client.get("/classes/MedicalDocument", {"where": where}), 102)


# ---- JSON nested 1,000 deep ----

def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 1000])
def test_deep_json_is_refused_on_every_face(alice, client, subscribe, hub, levels):
    parse, pid = alice
    raw = '{"notes": %s}' % deep(levels)
    r = client.post("/parse/classes/Allergy", data=raw, headers=parse.headers(),
                    content_type="application/json")
    assert "nests objects and arrays more than 100 levels" in parse_error(r, 107)["error"]
    r = client.get("/parse/classes/Allergy", query_string={"where": '{"notes": %s}' % deep(levels)},
                   headers=parse.headers())
    parse_error(r, 107)
    gql = ('{"query": "query($w: AllergyWhereInput) { allergies(where: $w) { count } }", '
           '"variables": {"w": %s}}')
    r = client.post("/parse/graphql", data=gql % deep(levels), headers=parse.headers(),
                    content_type="application/json")
    assert r.status_code == 400 and codes(r.json) == [107], r.json
    fhir = Fhir(client, parse.token)
    raw = b'{"resourceType": "Observation", "extension": %s}' % deep(levels).encode()
    r = fhir.request("POST", "Observation", data=raw)
    assert "more than 100 levels" in body(r, 400)["issue"][0]["diagnostics"]
    ws = LiveSocket(hub)
    ws.client.handle('{"op": "connect", "applicationId": "test-app", "x": %s}' % deep(levels))
    assert ws.received[-1]["op"] == "error" and ws.received[-1]["code"] == 1


def test_nesting_up_to_the_limit_is_accepted(alice, client, master):
    nested: dict = {}
    node = nested
    for _ in range(MAX_JSON_DEPTH - 2):  # the body's object and `contact` are two levels
        node["n"] = {}
        node = node["n"]
    node["n"] = 1
    made = ok(master.post("/classes/Provider", {"name": "Deep", "contact": nested}), 201)
    assert ok(master.get(f"/classes/Provider/{made['objectId']}"))["contact"] == nested
