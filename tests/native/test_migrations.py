"""The migrations build the schema the models declare (Alembic's autogenerate finds nothing to add),
on each database, and step down and up again."""
from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gateway.db import Base, make_engine
from gateway.migrate import alembic_config
from tests.conftest import DATABASES, fresh_database

import gateway.models  # noqa: F401,E402 - every table on Base.metadata


@pytest.fixture(scope="module", params=DATABASES)
def migrated(request, tmp_path_factory):
    url = fresh_database(request.param, tmp_path_factory, f"migrations_{request.param}")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def up_down_up(cfg, down_to: str, read):
    """What `read()` gives at head and after stepping down to `down_to`; the database ends at head."""
    command.upgrade(cfg, "head")
    upgraded = read()
    command.downgrade(cfg, down_to)
    downgraded = read()
    command.upgrade(cfg, "head")
    return upgraded, downgraded


def differences(engine) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(ctx, Base.metadata)


def test_the_migrations_build_the_models_schema(migrated):
    assert differences(migrated) == []


def _predicate(clause) -> str | None:
    return None if clause is None else re.sub(r"[()\s]", "", str(clause)).lower()


def partial_indexes(engine) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(each model index's WHERE, the same index's WHERE as the database has it): autogenerate compares
    neither."""
    dialect = engine.dialect.name
    declared = {ix.name: _predicate(ix.dialect_options[dialect]["where"])
                for table in Base.metadata.tables.values() for ix in table.indexes}
    inspector = inspect(engine)
    found = {ix["name"]: _predicate(ix.get("dialect_options", {}).get(f"{dialect}_where"))
             for table in inspector.get_table_names() for ix in inspector.get_indexes(table)}
    return declared, {name: found.get(name) for name in declared}


def test_partial_indexes_have_the_models_predicates(migrated):
    declared, found = partial_indexes(migrated)
    assert any(declared.values())  # the search index's value indexes are partial
    assert found == declared


def test_the_last_migration_steps_down_and_up(migrated):
    cfg = alembic_config()
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
        command.upgrade(cfg, "head")
    assert differences(migrated) == []
    declared, found = partial_indexes(migrated)
    assert found == declared


def test_postgresql_knows_which_values_go_with_which_parameter(migrated):
    """Extended statistics (not in the models: Alembic has no notion of them) that keep the planner from
    starting a compartment search at a common code."""
    if migrated.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's extended statistics")
    from sqlalchemy import text

    with migrated.connect() as conn:
        found = dict(conn.execute(text(
            "SELECT s.stxname, array_to_string(array_agg(a.attname ORDER BY a.attname), ',') "
            "FROM pg_statistic_ext s JOIN pg_attribute a ON a.attrelid = s.stxrelid AND a.attnum = ANY(s.stxkeys) "
            "WHERE s.stxrelid = 'fhir_index'::regclass GROUP BY s.stxname")).all())
    assert found == {"st_fhir_index_value": "param,resource_type,value",
                     "st_fhir_index_ref": "param,resource_type,target_id"}


def test_derived_search_parameters_lose_their_rows_and_get_them_back(migrated, monkeypatch):
    """0012 drops the rows of parameters made of others (`combo-code`, Observation's `patient`...) and its
    downgrade makes the very rows the indexer made for them before."""
    from sqlalchemy import text

    from gateway.fhir import extract
    from tests.fhir.test_search_derived_params import BASE, _every_param_stored_as_itself, _resources

    columns = ("resource_type, resource_id, param, system, value, norm, low, high, number, target_type, "
               "target_id")

    def rows(conn) -> list[tuple]:
        return sorted(tuple(map(str, r)) for r in conn.execute(text(f"SELECT {columns} FROM fhir_index")))

    cfg = alembic_config()
    with monkeypatch.context() as m:
        _every_param_stored_as_itself(m)
        before = [r for resource in _resources() for r in extract.index_rows(resource, BASE)]
    extract._index_plan.cache_clear()
    now = [r for resource in _resources() for r in extract.index_rows(resource, BASE)]
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
        conn.execute(text("DELETE FROM fhir_index"))
        names = columns.split(", ")
        conn.execute(text(f"INSERT INTO fhir_index ({columns}) VALUES ({', '.join(':' + n for n in names)})"),
                     [{n: r.get(n) for n in names} for r in before])
        as_before = rows(conn)
        upgraded, downgraded = up_down_up(cfg, "0011", lambda: rows(conn))
        conn.execute(text("DELETE FROM fhir_index"))
    assert len(upgraded) < len(as_before)
    assert {r[2] for r in as_before} - {r[2] for r in upgraded} == {
        "combo-code", "patient", "combo-value-quantity", "combo-value-concept", "combo-data-absent-reason"}
    assert upgraded == sorted(tuple(map(str, (r.get(n) for n in columns.split(", ")))) for r in now)
    assert downgraded == as_before


def test_record_version_drops_the_rows_that_repeat_the_current_version(migrated):
    """0013: record_version keeps replaced versions only; the row of a record's current version goes (an
    update would store its prior version under that key), the ones before it stay."""
    from datetime import datetime, timezone

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from gateway.models import AuditLog, RecordVersion

    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    cfg = alembic_config()
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
        session = Session(bind=conn)
        session.add(AuditLog(object_id="aud0000001", created_at=now, updated_at=now, version=2,
                             actor_type="master", entity_type="Allergy", entity_id="x", action="update",
                             summary="s", acl={}))
        session.add_all([RecordVersion(class_name=c, object_id=i, version=v, recorded_at=now, deleted=False,
                                       data={})
                         for c, i, v in (("AuditLog", "aud0000001", 1), ("AuditLog", "aud0000001", 2),
                                         ("Allergy", "aud0000001", 2), ("AuditLog", "gone000001", 1))])
        session.flush()
        command.upgrade(cfg, "head")
        kept = sorted(conn.execute(text("SELECT class_name, object_id, version FROM record_version")).all())
        conn.execute(text("DELETE FROM record_version"))
        conn.execute(text("DELETE FROM audit_log"))
    assert kept == [("Allergy", "aud0000001", 2), ("AuditLog", "aud0000001", 1),
                    ("AuditLog", "gone000001", 1)]


def test_value_string_rows_for_coded_values_are_made_from_the_stored_bodies(migrated):
    """0014: Observations stored before the indexer's fix get the value-string rows of their
    valueCodeableConcept.text (those the indexer makes now); others keep theirs; downgrading removes them."""
    from datetime import datetime, timezone

    import orjson
    from sqlalchemy import text

    from gateway.fhir.extract import index_rows

    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    coded = {"resourceType": "Observation", "id": "coded00001", "status": "final", "code": {"text": "Flu"},
             "valueCodeableConcept": {"text": "Positive for influenza A"}}
    plain = {"resourceType": "Observation", "id": "plain00001", "status": "final", "code": {"text": "Flu"},
             "valueString": "Negative"}
    no_text = {"resourceType": "Observation", "id": "notext0001", "status": "final", "code": {"text": "Flu"},
               "valueCodeableConcept": {"coding": [{"code": "x"}]}}
    resources = (coded, plain, no_text)

    def value_strings(conn) -> list[tuple]:
        return sorted(conn.execute(text("SELECT resource_id, value, norm FROM fhir_index "
                                        "WHERE param = 'value-string'")).all())

    cfg = alembic_config()
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
        for r in resources:
            conn.execute(text("INSERT INTO fhir_resource (resource_type, id, class_name, source_id, "
                              "version_id, last_updated, deleted, body) "
                              "VALUES ('Observation', :id, 'LabResult', :id, 1, :now, false, :body)"),
                         {"id": r["id"], "now": now, "body": orjson.dumps(r).decode()})
        conn.execute(text("INSERT INTO fhir_index (resource_type, resource_id, param, value, norm) "
                          "VALUES ('Observation', 'plain00001', 'value-string', 'Negative', 'negative')"))
        before = value_strings(conn)
        upgraded, downgraded = up_down_up(cfg, "0013", lambda: value_strings(conn))
        conn.execute(text("DELETE FROM fhir_index"))
        conn.execute(text("DELETE FROM fhir_resource"))
    assert before == downgraded == [("plain00001", "Negative", "negative")]
    expected = sorted((r["resource_id"], r["value"], r["norm"]) for res in resources for r in index_rows(res)
                      if r["param"] == "value-string")
    assert upgraded == expected == [("coded00001", "Positive for influenza A", "positive for influenza a"),
                                    ("plain00001", "Negative", "negative")]
