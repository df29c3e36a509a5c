"""Providers: a provider's login lists exactly the patients who share with it (FHIR Patient search and the
native Profile query), and its FHIR Group holds exactly its consenting patients, losing one at once when a
grant is revoked or expires."""
from __future__ import annotations

import time

import pytest

from tests.conftest import date
from tests.fhir.conftest import Fhir, body
from tests.native.conftest import ok
from tests.sharing.helpers import entry_ids, grant_body, iso_in


@pytest.fixture
def patients(client, signup, make_profile, provider_user):
    """Five patients and two providers: p1 and p2 share with Dr A (p2 two profiles' worth: her own and
    her son's), p3's grant to Dr A expired, p4's was revoked, p5 shares with Dr B only."""
    dr_a_uid, dr_a, dr_a_client = provider_user("dr.a")
    _, dr_b, dr_b_client = provider_user("dr.b")
    out = {"dr_a": dr_a, "dr_b": dr_b, "dr_a_client": dr_a_client, "dr_b_client": dr_b_client, "owners": {}}
    for name in ("p1", "p2", "p3", "p4", "p5"):
        _, owner = signup(name)
        out["owners"][name] = owner
        out[name] = make_profile(owner, f"Patient {name}")
    out["p2son"] = make_profile(out["owners"]["p2"], "Son of p2")
    share = lambda who, pid, prov, **kw: ok(out["owners"][who].post(  # noqa: E731
        "/classes/SharedAccess", grant_body(pid, prov, **kw)), 201)["objectId"]
    out["g1"] = share("p1", out["p1"], dr_a)
    out["g2"] = share("p2", out["p2"], dr_a, scope=("labs",))
    out["g2son"] = share("p2", out["p2son"], dr_a, expiresAt=date("2099-01-01"))
    share("p3", out["p3"], dr_a, expiresAt=date("2021-01-01"))
    g4 = share("p4", out["p4"], dr_a)
    ok(out["owners"]["p4"].put(f"/classes/SharedAccess/{g4}", {"revokedAt": date("2025-01-01T00:00:00.000Z")}))
    share("p5", out["p5"], dr_b)
    return out


def test_a_provider_lists_exactly_its_patients(client, patients):
    dr = Fhir(client, patients["dr_a_client"].token)
    want = {patients[k] for k in ("p1", "p2", "p2son")}
    assert entry_ids(body(dr.get("Patient", {"_count": "100"}))) == want
    assert {p["objectId"] for p in ok(patients["dr_a_client"].get("/classes/Profile"))["results"]} == want
    other = Fhir(client, patients["dr_b_client"].token)
    assert entry_ids(body(other.get("Patient"))) == {patients["p5"]}
    # _summary=count does not leak the others either
    assert body(dr.get("Patient", {"_summary": "count"}))["total"] == 3


def group_members(fhir: Fhir, provider_id: str) -> set[str]:
    group = body(fhir.get(f"Group/{provider_id}"))
    assert group["quantity"] == len(group.get("member", []))
    return {m["entity"]["reference"].split("/")[1] for m in group.get("member", [])}


def test_each_provider_has_a_group_of_its_consenting_patients(client, patients, signup):
    dr_a = Fhir(client, patients["dr_a_client"].token)
    assert group_members(dr_a, patients["dr_a"]) == {patients[k] for k in ("p1", "p2", "p2son")}
    assert group_members(Fhir(client, patients["dr_b_client"].token), patients["dr_b"]) == {patients["p5"]}
    # nobody else reads a provider's Group: not the other provider, not a patient in it
    assert dr_a.get(f"Group/{patients['dr_b']}").status_code == 404
    assert Fhir(client, patients["owners"]["p1"].token).get(f"Group/{patients['dr_a']}").status_code == 404


def test_revocation_removes_a_member_at_once(client, patients):
    dr_a = Fhir(client, patients["dr_a_client"].token)
    ok(patients["owners"]["p1"].put(f"/classes/SharedAccess/{patients['g1']}",
                                    {"revokedAt": date("2025-01-01T00:00:00.000Z")}))
    assert group_members(dr_a, patients["dr_a"]) == {patients["p2"], patients["p2son"]}
    assert entry_ids(body(dr_a.get("Patient"))) == {patients["p2"], patients["p2son"]}


def test_expiry_removes_a_member_at_once(client, patients):
    """A grant that ends by time, with no write at all: the next read no longer has that patient."""
    dr_a = Fhir(client, patients["dr_a_client"].token)
    ok(patients["owners"]["p2"].put(f"/classes/SharedAccess/{patients['g2son']}", {"expiresAt": iso_in(1.5)}))
    assert patients["p2son"] in group_members(dr_a, patients["dr_a"])
    time.sleep(1.8)
    assert group_members(dr_a, patients["dr_a"]) == {patients["p1"], patients["p2"]}
    assert entry_ids(body(dr_a.get("Patient"))) == {patients["p1"], patients["p2"]}
    assert body(dr_a.get(f"Consent/{patients['g2son']}"))["status"] == "inactive"
