"""Result parameters: _sort (several keys, descending), _count with self/next/previous links that stay
correct while data changes (keyset cursors), _total, _summary, _elements, unknown parameters (400, or
ignored with Prefer: handling=lenient), and POST _search (hl7.org/fhir/R4/search.html#return)."""
from __future__ import annotations

import pytest

from tests.fhir import synthea
from tests.fhir.conftest import body, ids, link, load_record, outcome, query


@pytest.fixture
def many(person):
    """12 labs of one patient: 3 codes x 4 dates, with distinct values."""
    p = load_record(person("pat"), labs=0, vaccines=0, allergies=0, meds=0)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for i in range(12):
        obs = synthea.lab(p.ref, i % 3, synthea.date(2024, 1 + i // 3, 1), value=10 + i)
        bundle["entry"].append({"resource": obs, "request": {"method": "POST", "url": "Observation"}})
    p.obs = [e["resource"] for e in p.fhir.transaction(bundle)["entry"]]
    return p


def test_sort_several_keys_and_descending(many):
    found = many.fhir.search("Observation", {"_sort": "code,-date", "_count": "50"})
    got = [(r["code"]["coding"][0]["code"], r["effectiveDateTime"]) for r in
           (e["resource"] for e in found["entry"])]
    expected = sorted(((o["code"]["coding"][0]["code"], o["effectiveDateTime"]) for o in many.obs),
                      key=lambda t: (t[0], [-ord(c) for c in t[1]]))
    assert got == expected
    values = [e["resource"]["valueQuantity"]["value"] for e in
              many.fhir.search("Observation", {"_sort": "-value-quantity"})["entry"]]
    assert values == sorted(values, reverse=True)
    by_id = ids(many.fhir.search("Observation", {"_sort": "_id", "_count": "50"}))
    assert by_id == sorted(by_id)
    outcome(many.fhir.get("Observation", {"_sort": "nonsense"}), 400)


def _walk(p, first: dict) -> list[str]:
    seen, page = [], first
    while True:
        seen += ids(page)
        nxt = link(page, "next")
        if not nxt:
            return seen
        page = p.fhir.follow(nxt)


def test_count_pages_and_links(many):
    first = many.fhir.search("Observation", {"_count": "5", "_sort": "date"})
    assert len(ids(first)) == 5 and first["total"] == 12
    assert link(first, "self") and not link(first, "previous")
    assert ("_count", "5") in query(link(first, "next"))
    assert len(_walk(many, first)) == 12 and len(set(_walk(many, first))) == 12
    second = many.fhir.follow(link(first, "next"))
    back = many.fhir.follow(link(second, "previous"))
    assert ids(back) == ids(first)


def test_links_stay_correct_while_data_changes(many):
    """Keyset cursors: inserting before the cursor or deleting what was already seen neither repeats nor
    skips anything on the next pages."""
    first = many.fhir.search("Observation", {"_count": "4", "_sort": "date,_id"})
    seen = ids(first)
    # an older lab appears (sorts before everything) and a seen one is deleted
    many.fhir.create(synthea.lab(many.ref, 0, synthea.date(2020, 1, 1)))
    many.fhir.delete(f"Observation/{seen[0]}")
    page = many.fhir.follow(link(first, "next"))
    rest = ids(page)
    while link(page, "next"):
        page = many.fhir.follow(link(page, "next"))
        rest += ids(page)
    assert sorted(seen + rest) == sorted(o["id"] for o in many.obs)
    assert not set(seen) & set(rest)
    # and a newer one added mid-walk shows up on a later page
    first = many.fhir.search("Observation", {"_count": "4", "_sort": "date,_id"})
    late = many.fhir.create(synthea.lab(many.ref, 0, synthea.date(2030, 1, 1)))["id"]
    assert late in _walk(many, first)[4:]


def test_count_zero_and_total(many):
    zero = many.fhir.search("Observation", {"_count": "0"})
    assert zero["total"] == 12 and "entry" not in zero
    assert "total" not in many.fhir.search("Observation", {"_total": "none"})
    assert many.fhir.search("Observation", {"_total": "accurate", "_count": "2"})["total"] == 12
    outcome(many.fhir.get("Observation", {"_count": "-1"}), 400)
    outcome(many.fhir.get("Observation", {"_count": "many"}), 400)


def test_summary_count_and_true(many):
    counted = many.fhir.search("Observation", {"_summary": "count", "code": "2339-0"})
    assert counted["total"] == 4 and "entry" not in counted
    summary = many.fhir.search("Observation", {"_summary": "true", "_count": "3"})
    for e in summary["entry"]:
        r = e["resource"]
        assert "category" not in r and "code" in r and "valueQuantity" in r
        assert any(t["code"] == "SUBSETTED" for t in r["meta"]["tag"])


def test_elements(many):
    found = many.fhir.search("Observation", {"_elements": "code,valueQuantity", "_count": "3"})
    for e in found["entry"]:  # plus the mandatory status, so the subset still parses (R4 search.html#elements)
        assert set(e["resource"]) == {"resourceType", "id", "meta", "code", "valueQuantity", "status"}


def test_unknown_parameter_strict_and_lenient(many):
    oo = outcome(many.fhir.get("Observation", {"colour": "blue"}), 400)
    assert "colour" in oo["issue"][0]["diagnostics"]
    lenient = body(many.fhir.get("Observation", {"colour": "blue", "code": "2339-0"},
                                 headers={"Prefer": "handling=lenient"}))
    assert len(ids(lenient)) == 4
    warning = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert warning and "colour" in warning[0]["resource"]["issue"][0]["diagnostics"]
    # strict is the default, and can be asked for
    outcome(many.fhir.get("Observation", {"colour": "blue"}, headers={"Prefer": "handling=strict"}), 400)


def test_post_search(many):
    r = many.fhir.request("POST", "Observation/_search", data=b"code=2339-0&_count=2",
                          content_type="application/x-www-form-urlencoded")
    found = body(r)
    assert found["total"] == 4 and len(ids(found)) == 2
    nxt = many.fhir.follow(link(found, "next"))  # the next link carries the form's criteria
    assert len(ids(nxt)) == 2 and not set(ids(nxt)) & set(ids(found))
