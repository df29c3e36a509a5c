"""Parse's instant format as the codec writes it (gateway/services/codec.iso): UTC, milliseconds truncated,
a Z; whatever zone the datetime comes in."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from gateway.services.codec import iso


@pytest.mark.parametrize("value, text", [
    (datetime(2026, 11, 24, 12, 43, 9, 405000, tzinfo=timezone.utc), "2026-11-24T12:43:09.405Z"),
    (datetime(2026, 11, 24, 12, 43, 9, 999999, tzinfo=timezone.utc), "2026-11-24T12:43:09.999Z"),  # not rounded up
    (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05.000Z"),
    (datetime(5, 1, 1, tzinfo=timezone.utc), "0005-01-01T00:00:00.000Z"),
    (datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2025-12-31T23:30:00.000Z"),
])
def test_known_instants(value, text):
    assert iso(value) == text


def test_any_instant_as_isoformat_writes_it_in_utc():
    rnd = random.Random(9)
    for _ in range(20_000):
        zone = timezone(timedelta(minutes=rnd.randint(-720, 840))) if rnd.random() < 0.5 else timezone.utc
        value = datetime(rnd.randint(2, 9998), rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                         rnd.randint(0, 59), rnd.randint(0, 59), rnd.randint(0, 999_999), tzinfo=zone)
        expected = value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert iso(value) == expected


INSTANTS = ["2026-11-24T12:43:09.405Z", "2026-11-24T12:43:09.999Z", "2026-01-02T03:04:05.000Z",
            "0005-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2000-02-29T00:00:00.001Z"]


def test_queries_and_gets_show_instants_as_the_codec_writes_them(signup, make_profile, make_record, db_session):
    """On PostgreSQL the database formats the instants a query or GET shows (services/query.columns); on
    both databases the answer is what codec.iso makes of the stored value."""
    from sqlalchemy import select

    from gateway.models import LabResult
    from tests.conftest import pointer

    _, alice = signup("alice")
    pid = make_profile(alice)
    ids = {make_record(alice, "LabResult", pid, testName=f"t{i}", date={"__type": "Date", "iso": text}): text
           for i, text in enumerate(INSTANTS)}
    stored = {r.object_id: r for r in db_session.scalars(select(LabResult).where(LabResult.object_id.in_(ids)))}
    found = alice.get("/classes/LabResult", {"where": {"profile": pointer("Profile", pid)}, "limit": 100}).json["results"]
    assert len(found) == len(INSTANTS)
    for record in found + [alice.get(f"/classes/LabResult/{rid}").json for rid in ids]:
        row = stored[record["objectId"]]
        assert record["date"] == {"__type": "Date", "iso": ids[record["objectId"]]}
        assert (record["createdAt"], record["updatedAt"]) == (iso(row.created_at), iso(row.updated_at))
