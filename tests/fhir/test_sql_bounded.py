"""No N+1: a search for one patient's resources with _include and _revinclude runs the same number of SQL
statements for 5 results as for 60 (counted at the driver: tests/conftest.py `sent`), for the
owner and for a grantee whose reads are audited."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.conftest import sent_during
from tests.fhir.conftest import body, load_record, pointer


def _queries(p):
    return [
        ("Observation", {"subject": p.ref, "_include": "Observation:subject", "_revinclude": "Observation:has-member",
                         "_count": "100"}),
        ("Patient", {"_id": p.patient_id, "_revinclude": ["Observation:subject", "Immunization:patient",
                                                           "AllergyIntolerance:patient"],
                     "_include": "Patient:general-practitioner"}),
        ("Observation", {"patient": p.ref, "_include": "Observation:patient",
                         "_revinclude:iterate": "Immunization:patient", "_count": "100"}),
    ]


@pytest.mark.parametrize("as_grantee", [False, True], ids=["owner", "grantee"])
def test_statement_count_does_not_grow_with_results(sent, person, as_grantee):
    small = load_record(person("small"), labs=5, vaccines=2, seed=1)
    large = load_record(person("large"), labs=60, vaccines=20, seed=2)
    reader = person("doctor")
    if as_grantee:
        for p in (small, large):
            r = p.parse.post("/classes/SharedAccess", {"profile": pointer("Profile", p.patient_id),
                                                       "grantee": pointer("_User", reader.user_id),
                                                       "accessLevel": "read", "scope": ["labs", "immunizations"]})
            assert r.status_code == 201, r.json
    results = {}
    for name, p in (("small", small), ("large", large)):
        client = reader.fhir if as_grantee else p.fhir
        for i, (rt, params) in enumerate(_queries(p)):
            client.get(rt, params)  # warm caches (registry, consents) outside the count
            with sent_during(sent) as seen:
                r = client.get(rt, params)
            found = body(r)
            results[(name, i)] = (len(seen), len(found.get("entry", [])))
    for i in range(len(_queries(small))):
        (n_small, e_small), (n_large, e_large) = results[("small", i)], results[("large", i)]
        assert e_large > e_small * 5, (i, e_small, e_large)  # really more results...
        assert n_small == n_large, (i, n_small, n_large)  # ...with the same statements
        assert n_large <= 40, (i, n_large)  # today 10-12 for the owner, 22-24 with the grantee's audit rows
    assert synthea
