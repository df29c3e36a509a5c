"""Schema migrations (Alembic), run by `phr-gateway db upgrade`, by `serve` and `worker` at start, and by
the test suite.

Several processes may start at once on one empty database (the gateway and the export worker of a
deployment): on PostgreSQL the first takes an advisory lock for its transaction and the others wait for it,
then find the database at head and do nothing (without it they raced each other's CREATE TABLEs and one
died on a duplicate). SQLite needs none: our engine begins every write transaction with BEGIN IMMEDIATE.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: The advisory lock's key (pg_advisory_xact_lock takes any 64-bit number): "phrmigr" in ASCII.
LOCK_KEY = 0x7068726D696772


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> bool:
    """Bring the database to `revision`; True if this call changed it (False: another process had)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends (Alembic's DDL is transactional on PostgreSQL).
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        before = MigrationContext.configure(conn).get_current_heads()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return MigrationContext.configure(conn).get_current_heads() != before
