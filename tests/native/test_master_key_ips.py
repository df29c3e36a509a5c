"""PHR_MASTER_KEY_IPS: the master key is accepted only from the listed addresses (as Parse's masterKeyIps)."""
import pytest

from tests.conftest import APP_ID, MASTER_KEY


@pytest.mark.parametrize("allow, remote, accepted", [
    (None, "203.0.113.9", True),
    ("127.0.0.1,::1", "127.0.0.1", True),
    ("127.0.0.1,::1", "203.0.113.9", False),
    ("10.0.0.0/8", "10.4.5.6", True),
    ("10.0.0.0/8", "11.4.5.6", False),
])
def test_master_key_only_from_allowed_addresses(app_config, allow, remote, accepted):
    from gateway import create_app

    app = create_app({**app_config, "MASTER_KEY_IPS": allow})
    client = app.test_client()
    headers = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}
    native = client.get("/parse/schemas", headers=headers, environ_base={"REMOTE_ADDR": remote})
    fhir = client.get("/fhir/Patient", headers=headers, environ_base={"REMOTE_ADDR": remote})
    assert (native.status_code == 200) is accepted
    assert (fhir.status_code == 200) is accepted
    if not accepted:
        assert native.json == {"error": "unauthorized"}
        assert fhir.json["resourceType"] == "OperationOutcome"
