"""The PyPI `fhirclient` (SMART on FHIR's Python client) completes a standalone launch with PKCE against
the running server: it reads our CapabilityStatement's oauth-uris, we sign in and approve on our pages as
a browser would, then `handle_callback` exchanges the code and the client reads the patient's record."""
from __future__ import annotations

import pytest
from fhirclient import client as fhirclient
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

from tests.smart_e2e.conftest import approve

pytestmark = pytest.mark.e2e

REDIRECT = "http://127.0.0.1:9/fhirclient-callback"  # never opened: the test reads the redirect itself


def test_standalone_launch_with_pkce(live_server, people):
    carol = people["carol"]
    cid = live_server.cli("clients", "create", "--name", "Python fhirclient app", "--public",
                          "--redirect-uri", REDIRECT)["client_id"]
    smart = fhirclient.FHIRClient(settings={
        "app_id": cid, "api_base": f"{live_server.url}/fhir", "redirect_uri": REDIRECT,
        "scope": "openid fhirUser patient/Patient.rs patient/Observation.rs offline_access",
    })
    url = smart.authorize_url
    assert "code_challenge=" in url and "code_challenge_method=S256" in url and "aud=" in url
    callback = approve(url, carol.username, patient=carol.profiles[1])
    assert callback.startswith(REDIRECT + "?")
    smart.handle_callback(callback)
    assert smart.ready and smart.patient_id == carol.profiles[1]
    patient = Patient.read(carol.profiles[1], smart.server)
    assert patient.name[0].text == "Danny Smith"
    labs = list(Observation.where(struct={"patient": carol.profiles[1]}).perform_resources_iter(smart.server))
    assert len(labs) == 2 and all(o.subject.reference.endswith(carol.profiles[1]) for o in labs)
    # the other record Carol manages stays out of reach of this token
    other = list(Observation.where(struct={"patient": carol.profiles[0]}).perform_resources_iter(smart.server))
    assert other == []
    first_token = smart.server.auth.access_token
    assert smart.server.auth.refresh_token, "offline_access was granted"
    assert smart.reauthorize()  # the refresh_token grant, through the library
    assert smart.server.auth.access_token != first_token
    assert Patient.read(carol.profiles[1], smart.server).id == carol.profiles[1]
