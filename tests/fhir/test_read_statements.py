"""What an owner's read and a compartment search cost in SQL (docs/PERFORMANCE.md, "API hot paths"): a read
is one statement; the first page of a search is one too, its total counted in the same statement (a window
over the filtered set, before LIMIT); a later page is two, since its cursor narrows the page and the total is
counted apart. The owner's reads write nothing. Totals are the same on every page and for `_summary=count`."""
from __future__ import annotations

from tests.fhir.conftest import body, ids, link, relative
from tests.conftest import sent_during

WRITES = ("INSERT", "UPDATE", "DELETE")


def _resource_statements(seen: list[str]) -> list[str]:
    """The statements on the FHIR view (the caller's lookup and SAVEPOINTs of the test harness aside)."""
    return [s for s in seen if "fhir_resource" in s]


def _writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.lstrip().upper().startswith(WRITES)]


def test_owner_read_is_one_statement_and_writes_nothing(sent, alice):
    ref = f"Observation/{alice.record['Observation'][0]}"
    alice.fhir.read(ref)  # warm caches (the caller, the statement) outside the count
    with sent_during(sent) as seen:
        r = alice.fhir.get(ref)
    assert body(r)["id"] == ref.split("/")[1]
    assert r.headers["ETag"] == 'W/"1"' and r.headers["Last-Modified"].endswith(" GMT")
    assert len(_resource_statements(seen)) == 1, seen
    assert not _writes(seen), seen
    with sent_during(sent) as seen:
        body(alice.fhir.get("Observation/nope"), 404)
    assert len(_resource_statements(seen)) == 1 and not _writes(seen), seen


def test_search_pages_carry_the_total(sent, alice):
    params = {"patient": alice.ref, "_count": "2", "_sort": "date"}
    expected = alice.fhir.search("Observation", {"patient": alice.ref, "_summary": "count"})["total"]
    assert expected == len(alice.record["Observation"]) >= 4
    alice.fhir.search("Observation", params)  # warm
    with sent_during(sent) as seen:
        first = alice.fhir.search("Observation", params)
    assert first["total"] == expected and len(ids(first)) == 2
    assert len(_resource_statements(seen)) == 1 and not _writes(seen), seen
    with sent_during(sent) as seen:
        second = body(alice.fhir.get(relative(link(first, "next"))))
    assert second["total"] == expected and len(ids(second)) == 2
    assert len(_resource_statements(seen)) == 2 and not _writes(seen), seen
    back = alice.fhir.follow(link(second, "previous"))
    assert back["total"] == expected and ids(back) == ids(first)
    seen_ids, page = [], first
    while page is not None:
        assert page["total"] == expected
        seen_ids += ids(page)
        page = alice.fhir.follow(link(page, "next")) if link(page, "next") else None
    assert sorted(seen_ids) == sorted(alice.record["Observation"])


def test_search_totals_when_empty_or_not_asked(sent, alice, bob):
    nothing = alice.fhir.search("Observation", {"patient": bob.ref})  # Bob's labs are not Alice's to see
    assert nothing["total"] == 0 and "entry" not in nothing
    with sent_during(sent) as seen:
        untotalled = alice.fhir.search("Observation", {"patient": alice.ref, "_total": "none"})
    assert "total" not in untotalled and len(ids(untotalled)) == len(alice.record["Observation"])
    assert len(_resource_statements(seen)) == 1, seen
    zero = alice.fhir.search("Observation", {"patient": alice.ref, "_count": "0"})
    assert zero["total"] == len(alice.record["Observation"]) and "entry" not in zero
