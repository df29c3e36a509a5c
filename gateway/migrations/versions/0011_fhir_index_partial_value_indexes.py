"""fhir_index value indexes hold only the rows that have their column

Each search index row fills one or two of the sparse columns (a token its value, a date low and high, a
reference its target), yet entered all seven indexes. With the norm, date, number and both reference
indexes partial, a row enters three to five: less PostgreSQL CPU per resource a Bundle writes
(docs/PERFORMANCE.md). `value`, set on most rows, stays whole.

On PostgreSQL, statistics of which values go with which parameter (extended MCV statistics): estimated as
independent columns, `code=718-7` looked like 7 rows of Observation codes instead of ~1,200, and the planner
started `patient=...&code=...` from the code (1.6 -> 13 ms at 10k) and `_has` from the wrong side (73 ms;
1.2 with these).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

#: PostgreSQL extended statistics on fhir_index: name -> columns whose common combinations it keeps.
STATISTICS = {
    "st_fhir_index_value": ("resource_type", "param", "value"),
    "st_fhir_index_ref": ("resource_type", "param", "target_id"),
}
#: name -> (the column a row must have, the indexed columns)
INDEXES = {
    "ix_fhir_index_norm": ("norm", ["resource_type", "param", "norm"]),
    "ix_fhir_index_date": ("low", ["resource_type", "param", "low", "high"]),
    "ix_fhir_index_number": ("number", ["resource_type", "param", "number"]),
    "ix_fhir_index_target": ("target_id", ["target_type", "target_id", "param"]),
    "ix_fhir_index_ref": ("target_id", ["resource_type", "param", "target_id"]),
}


def upgrade() -> None:
    for name, (present, columns) in INDEXES.items():
        where = sa.text(f"{present} IS NOT NULL")
        op.drop_index(name, table_name="fhir_index")
        op.create_index(name, "fhir_index", columns, postgresql_where=where, sqlite_where=where)
    if op.get_bind().dialect.name == "postgresql":
        for name, columns in STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} (mcv) ON {', '.join(columns)} FROM fhir_index")
        op.execute("ANALYZE fhir_index")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    for name, (_, columns) in INDEXES.items():
        op.drop_index(name, table_name="fhir_index")
        op.create_index(name, "fhir_index", columns)
