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
