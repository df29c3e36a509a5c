"""Rest-hook endpoints must be public addresses unless explicitly allowed (no SSRF into our network)."""
import pytest

from gateway.subscriptions.endpoints import endpoint_problem


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.5/x",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "ftp://example.org/x", "http:///nohost",
])
def test_non_public_or_malformed_endpoints_are_refused(monkeypatch, url):
    monkeypatch.setenv("PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS", "0")
    assert endpoint_problem(url) is not None


def test_private_endpoints_can_be_allowed_for_development(monkeypatch):
    monkeypatch.setenv("PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS", "1")
    assert endpoint_problem("http://127.0.0.1:9/hook") is None
    assert endpoint_problem("ftp://127.0.0.1/x") is not None


def test_subscription_with_private_endpoint_is_refused_through_fhir(client, signup, monkeypatch):
    monkeypatch.setenv("PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS", "0")
    _, alice = signup("alice")
    r = client.post("/fhir/Subscription", headers={"X-Parse-Session-Token": alice.token}, json={
        "resourceType": "Subscription", "status": "requested", "reason": "watch", "criteria": "Observation",
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook"}})
    assert r.status_code in (400, 422)
    assert r.json["resourceType"] == "OperationOutcome"
    assert "non-public" in str(r.json)
