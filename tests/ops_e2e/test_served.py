"""Metrics and the access log on the real server (`phr-gateway serve`, gunicorn, 2 worker processes): a
scrape answered by either worker counts every worker's requests (prometheus_client's multiprocess files),
open WebSockets are summed over the live workers, and the access log (the server's stdout) shows each
request end to end, by the id the client got back, with nothing of the request's data."""
from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
import requests
import simple_websocket
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import DATABASES
from tests.e2e.conftest import APP_ID, JS_KEY, running_server
from tests.ops.test_metrics import samples, value

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
NAME = "Wilhelmina Oakenshield"
SUBSTANCE = "Lapis-Lazuli-Dust"
PASSWORD = "pw-Zanzibar-5150"


@pytest.fixture(scope="module", params=DATABASES)
def served(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics")
    with running_server(request.param, tmp_path_factory, "ops_e2e", workers=2, PHR_METRICS_TOKEN=TOKEN,
                        PROMETHEUS_MULTIPROC_DIR=str(folder)) as server:
        yield server, folder


def scrape(url: str) -> dict[tuple, float]:
    r = requests.get(f"{url}/metrics", headers=SCRAPE, timeout=10)
    assert r.status_code == 200, r.text
    return samples(r.text)


def requests_per_worker(folder: Path) -> dict[str, float]:
    """phr_http_requests_total as each worker's own file holds it."""
    out = {}
    for f in folder.glob("counter_*.db"):
        total = 0.0
        for key, val, _ts, _pos in MmapedDict.read_all_values_from_file(str(f)):
            if json.loads(key)[1] == "phr_http_requests_total":
                total += val
        out[f.stem.split("_", 1)[1]] = total
    return out


def test_a_scrape_adds_up_every_worker(served):
    server, folder = served
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer no"}
    assert requests.get(f"{server.url}/metrics", headers=wrong, timeout=10).status_code == 401
    before = scrape(server.url)
    # Two keep-alive connections at once: the second goes to the worker holding fewer
    # (gateway/live/balance.py), once both workers are serving (the second may still be loading).
    sent = 0
    deadline = time.monotonic() + 30
    while len({pid for pid, n in requests_per_worker(folder).items() if n}) < 2:
        assert time.monotonic() < deadline, (requests_per_worker(folder), server.process.log_tail())
        first, second = requests.Session(), requests.Session()
        for _ in range(5):
            for s in (first, second):
                r = s.get(f"{server.url}/parse/health", timeout=10,
                          headers={"X-Parse-Application-Id": APP_ID, "X-Parse-Javascript-Key": JS_KEY})
                assert r.status_code == 200, r.text
                sent += 1
        first.close()
        second.close()
        time.sleep(0.2)
    for _ in range(4):  # whichever worker answers the scrape, it reports both workers' requests
        after = scrape(server.url)
        # (not /healthz: the server's start polls it, and a poll that timed out may still be answered later)
        health = {"face": "native", "route": "/parse/health", "method": "GET", "status": "200"}
        assert value(after, "phr_http_requests_total", **health) \
            - value(before, "phr_http_requests_total", **health) == sent
    size = value(after, "phr_db_pool_size")
    assert size == 2 * (34 if server.kind == "postgresql" else 5)  # --threads 32 + 2 per worker; SQLite: 5


def test_open_websockets_are_summed_over_the_workers(served):
    server, _ = served
    url = server.url.replace("http", "ws", 1) + "/parse"
    channel = {"channel": "livequery"}
    before = value(scrape(server.url), "phr_websockets_open", **channel)
    sockets = [simple_websocket.Client.connect(url) for _ in range(3)]
    try:
        deadline = time.monotonic() + 10
        while value(scrape(server.url), "phr_websockets_open", **channel) != before + 3:
            assert time.monotonic() < deadline, server.process.log_tail()
            time.sleep(0.1)
    finally:
        for ws in sockets:
            ws.close()
    deadline = time.monotonic() + 10
    while value(scrape(server.url), "phr_websockets_open", **channel) != before:
        assert time.monotonic() < deadline, server.process.log_tail()
        time.sleep(0.1)


def test_the_access_log_shows_a_request_end_to_end_without_its_data(served):
    server, _ = served
    parse = {"X-Parse-Application-Id": APP_ID, "X-Parse-Javascript-Key": JS_KEY,
             "Content-Type": "application/json"}
    username = NAME.lower().replace(" ", ".")
    r = requests.post(f"{server.url}/parse/users", json={"username": username, "password": PASSWORD},
                      headers=parse, timeout=10)
    assert r.status_code == 201, r.text
    token = r.json()["sessionToken"]
    me = {**parse, "X-Parse-Session-Token": token}
    pid = requests.post(f"{server.url}/parse/classes/Profile", json={"fullName": NAME}, headers=me,
                        timeout=10).json()["objectId"]
    rid = requests.post(f"{server.url}/parse/classes/Allergy", headers=me, timeout=10, json={
        "profile": {"__type": "Pointer", "className": "Profile", "objectId": pid}, "substance": SUBSTANCE,
        "severity": "mild", "reaction": "Sneezing"}).json()["objectId"]
    answers = {
        "native-get": requests.get(f"{server.url}/parse/classes/Allergy/{rid}", headers=me, timeout=10),
        "native-query": requests.get(f"{server.url}/parse/classes/Allergy", headers=me, timeout=10,
                                     params={"where": orjson.dumps({"substance": SUBSTANCE}).decode()}),
        "fhir-read": requests.get(f"{server.url}/fhir/AllergyIntolerance/{rid}", timeout=10,
                                  headers={"X-Parse-Session-Token": token, "X-Request-Id": "proxy-id-1"}),
        "fhir-search": requests.get(f"{server.url}/fhir/Patient", params={"name": NAME.split()[0]},
                                    timeout=10, headers={"X-Parse-Session-Token": token}),
        "bad-login": requests.post(f"{server.url}/parse/login", headers=parse, timeout=10,
                                   json={"username": username, "password": "nope"}),
    }
    assert answers["fhir-read"].headers["X-Request-Id"] == "proxy-id-1"
    expected = {
        "native-get": ("native", "GET", "/parse/classes/{className}/{objectId}", 200, "user"),
        "native-query": ("native", "GET", "/parse/classes/{className}", 200, "user"),
        "fhir-read": ("fhir", "GET", "/fhir/{type}/{id}", 200, "user"),
        "fhir-search": ("fhir", "GET", "/fhir/{type}", 200, "user"),
        "bad-login": ("native", "POST", "/parse/login", 404, "anonymous"),
    }
    log = ""
    deadline = time.monotonic() + 10
    while not all(a.headers["X-Request-Id"] in log for a in answers.values()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.1)
        log = server.process.log_path.read_text()
    lines = {}
    for text in log.splitlines():
        if text.startswith("{") and '"request_id"' in text and '"route"' in text:
            line = orjson.loads(text)
            lines[line["request_id"]] = line
    for what, answer in answers.items():
        line = lines[answer.headers["X-Request-Id"]]
        got = (line["face"], line["method"], line["route"], line["status"], line["principal"])
        assert got == expected[what], line
        assert line["bytes"] == len(answer.content) and line["duration_ms"] > 0
    for secret in (NAME, NAME.split()[0], username, PASSWORD, SUBSTANCE, token, pid, rid):
        assert secret not in log, secret
