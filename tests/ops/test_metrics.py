"""Prometheus metrics at /metrics, in process (tests/ops_e2e has them under gunicorn with 2 workers): only
with PHR_METRICS_TOKEN set, and then only for that bearer token; requests by face, route template, method
and status with latency histograms; login failures; export jobs; the database pool."""
from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import create_app
from tests.conftest import APP_ID
from tests.native.conftest import ok

TOKEN = "metrics-token-for-tests"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(scraped: dict[tuple, float], name: str, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "BASE_URL": "http://localhost", "METRICS_TOKEN": TOKEN}


@pytest.fixture
def scrape(client):
    def get() -> dict[tuple, float]:
        r = client.get("/metrics", headers=SCRAPE)
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return samples(r.get_data(as_text=True))
    return get


def test_no_metrics_without_the_token_setting(app_config):
    app = create_app({**app_config, "METRICS_TOKEN": None})
    r = app.test_client().get("/metrics", headers=SCRAPE)
    assert r.status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
                                           f"bearer  {TOKEN}", TOKEN])
def test_only_the_token_reads_the_metrics(client, authorization):
    r = client.get("/metrics", headers={"Authorization": authorization} if authorization else {})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"phr_" not in r.get_data()


def test_requests_are_counted_by_face_route_method_and_status(client, signup, scrape):
    before = scrape()
    uid, alice = signup("metric-alice")
    pid = ok(alice.post("/classes/Profile", {"fullName": "Alice Metric"}), 201)["objectId"]
    for _ in range(3):
        ok(alice.get(f"/classes/Profile/{pid}"))  # the Flask-free native GET
    session = {"X-Parse-Session-Token": alice.token}
    assert client.get(f"/fhir/Patient/{pid}", headers=session).status_code == 200
    assert client.get("/fhir/Patient/nope", headers=session).status_code == 404
    assert client.get(f"/parse/classes/Profile/{pid}").status_code == 403  # no application id
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    native_get = {"face": "native", "route": "/parse/classes/{className}/{objectId}", "method": "GET"}
    assert delta("phr_http_requests_total", **native_get, status="200") == 3
    assert delta("phr_http_requests_total", **native_get, status="403") == 1
    assert delta("phr_http_requests_total", face="native", route="/parse/classes/{className}", method="POST",
                 status="201") == 1
    fhir_read = {"face": "fhir", "route": "/fhir/{type}/{id}", "method": "GET"}
    assert delta("phr_http_requests_total", **fhir_read, status="200") == 1
    assert delta("phr_http_requests_total", **fhir_read, status="404") == 1
    assert delta("phr_http_request_duration_seconds_count", **native_get) == 4
    assert delta("phr_http_request_duration_seconds_bucket", **native_get, le="+Inf") == 4
    assert delta("phr_http_request_duration_seconds_sum", **native_get) > 0
    # Every label value is a template: no id of this test in any label.
    text = client.get("/metrics", headers=SCRAPE).get_data(as_text=True)
    assert pid not in text and uid not in text and "nope" not in text


def test_unknown_paths_and_methods_do_not_grow_the_labels(client, scrape):
    before = scrape()
    for i in range(5):
        client.get(f"/random-{i}/path").get_data()
        client.open("/parse/classes/Profile", method=f"BREW{i}").get_data()
    after = scrape()
    assert value(after, "phr_http_requests_total", face="other", route="{unmatched}", method="GET",
                 status="404") - value(before, "phr_http_requests_total", face="other", route="{unmatched}",
                                       method="GET", status="404") == 5
    routes = {dict(k[1]).get("route") for k in after if k[0] == "phr_http_requests_total"}
    methods = {dict(k[1]).get("method") for k in after if k[0] == "phr_http_requests_total"}
    assert not any(re.search(r"random-\d", r or "") for r in routes)
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_login_failures_are_counted_on_every_way_in(client, parse, signup, smart, scrape):
    signup("metric-bob")
    before = scrape()
    r = parse.post("/login", {"username": "metric-bob", "password": "wrong-password"})
    assert r.status_code == 404
    r = parse.post("/login", {"username": "nobody-at-all", "password": "wrong-password"})
    assert r.status_code == 404
    r = client.post("/parse/graphql", json={"query": 'mutation { logIn(input: {username: "metric-bob", '
                                                     'password: "nope"}) { viewer { sessionToken } } }'},
                    headers={"X-Parse-Application-Id": APP_ID})
    assert "errors" in r.json
    app = smart.register(kind="none")
    params, _ = smart.authorize_params(app, "launch/patient patient/*.rs")
    page = smart.start(params)
    assert page.status_code == 303
    html = client.get(page.headers["Location"]).get_data(as_text=True)
    from tests.smart.conftest import csrf_of

    nxt = re.search(r'name="next" value="([^"]+)"', html).group(1)
    r = client.post("/oauth/sign-in", data={"csrf": csrf_of(html), "next": nxt, "username": "metric-bob",
                                            "password": "wrong"})
    assert r.status_code in (200, 400, 401)
    after = scrape()
    assert value(after, "phr_login_failures_total", via="api") - value(before, "phr_login_failures_total",
                                                                      via="api") == 3
    assert value(after, "phr_login_failures_total", via="page") - value(before, "phr_login_failures_total",
                                                                       via="page") == 1
    assert ("phr_login_lockouts_total", (("via", "api"),)) in after


def test_export_jobs_are_read_from_the_database(client, alice, scrape):
    before = scrape()
    r = client.get("/fhir/Patient/$export", headers={"X-Parse-Session-Token": alice.parse.token,
                                                     "Accept": "application/fhir+json",
                                                     "Prefer": "respond-async"})
    assert r.status_code == 202, r.get_data(as_text=True)
    after = scrape()
    for state, more in (("queued", 1), ("running", 0)):
        jobs = ("phr_export_jobs",)
        assert value(after, *jobs, state=state) - value(before, *jobs, state=state) == more


def test_the_pool_in_use_is_counted(app, scrape):
    scrape()  # the first request instruments the app's pool
    engine = app.extensions["phr_db"][0]
    before = scrape()
    with engine.connect(), engine.connect():
        held = scrape()
    after = scrape()
    in_use = "phr_db_pool_connections_in_use"
    assert value(held, in_use) - value(before, in_use) == 2
    assert value(after, in_use) == value(before, in_use)
    assert value(after, "phr_db_pool_size") > 0
