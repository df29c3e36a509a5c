"""The migrations build the schema the models declare (Alembic's autogenerate finds nothing to add),
on each database, and step down and up again."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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


def test_the_last_migration_steps_down_and_up(migrated):
    cfg = alembic_config()
    with migrated.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "-1")
        command.upgrade(cfg, "head")
    assert differences(migrated) == []
