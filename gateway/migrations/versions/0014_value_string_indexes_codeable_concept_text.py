"""Observation value-string indexes valueCodeableConcept.text

R4's value-string is `(Observation.value.ofType(string)) | (Observation.value.ofType(CodeableConcept)).text`.
The indexer applied the type to `text` instead of `value`, so the second half never matched and a search
by the text of a coded value found nothing. The indexer is mended (gateway/fhir/params.py `typed_at`); this
gives the Observations stored before it their rows, made by the indexer itself from the stored bodies
(what it makes for value-string from now on). Downgrading removes them: the indexer before made none for an
Observation whose value is a CodeableConcept (value[x] holds one type, so it had no value-string rows).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""
import orjson
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_CODED = ("SELECT body FROM fhir_resource WHERE resource_type = 'Observation' AND NOT deleted "
          "AND body LIKE '%\"valueCodeableConcept\"%'")
_COLUMNS = ("resource_type", "resource_id", "param", "system", "value", "norm", "low", "high", "number",
            "target_type", "target_id")


def _coded(conn) -> list[dict]:
    """The stored Observations whose value is a CodeableConcept."""
    resources = (orjson.loads(body) for (body,) in conn.execute(sa.text(_CODED)))
    return [r for r in resources if isinstance(r.get("valueCodeableConcept"), dict)]


def _forget(conn, resources: list[dict]) -> None:
    for resource in resources:
        conn.execute(sa.text("DELETE FROM fhir_index WHERE resource_type = 'Observation' "
                             "AND resource_id = :rid AND param = 'value-string'"), {"rid": resource["id"]})


def upgrade() -> None:
    from gateway.fhir.extract import index_rows

    conn = op.get_bind()
    resources = _coded(conn)
    rows = [r for resource in resources for r in index_rows(resource) if r["param"] == "value-string"]
    _forget(conn, resources)
    if rows:
        conn.execute(sa.text(f"INSERT INTO fhir_index ({', '.join(_COLUMNS)}) "
                             f"VALUES ({', '.join(':' + c for c in _COLUMNS)})"),
                     [{c: r[c] for c in _COLUMNS} for r in rows])


def downgrade() -> None:
    conn = op.get_bind()
    _forget(conn, _coded(conn))
