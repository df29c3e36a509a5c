"""Patient-level $export with a SMART patient token (issue 7): a caregiver who manages two records
authorizes an app for one of them; the export holds that patient's compartment and nothing of the other."""
from __future__ import annotations

import orjson

from conformance.validate import validate_r4
from tests.bulk.conftest import relative, run_worker  # noqa: F401  (fixture)
from tests.smart.conftest import app_config, smart  # noqa: F401  (fixtures: SMART needs its BASE_URL)
from tests.smart.test_resource_server import READ_ALL, app_public, family  # noqa: F401  (fixtures)


def test_patient_token_exports_only_its_patient(smart, app_public, family, run_worker):  # noqa: F811
    _, own, son = family
    token = smart.login(app_public, READ_ALL, "carol", patient=son[0])
    fhir = smart.fhir(token["access_token"])
    r = fhir.get("Patient/$export", headers={"Prefer": "respond-async"})
    assert r.status_code == 202, r.get_data(as_text=True)
    assert run_worker() == 1
    manifest = orjson.loads(fhir.get(relative(r.headers["Content-Location"])).get_data())
    lines = [orjson.loads(line) for o in manifest["output"]
             for line in fhir.get(relative(o["url"])).get_data().splitlines()]
    assert lines, manifest
    patients = {x["id"] for x in lines if x["resourceType"] == "Patient"}
    assert patients == {son[0]}
    for resource in lines:
        assert validate_r4(resource) == []
        refs = orjson.dumps(resource).decode()
        assert own[0] not in refs  # nothing of the other record she manages
    # Another token, for the other record, cannot fetch these files.
    other = smart.fhir(smart.login(app_public, READ_ALL, "carol", patient=own[0])["access_token"])
    assert other.get(relative(manifest["output"][0]["url"])).status_code in (401, 403, 404)
