"""search parameters made of others keep no index rows of their own

`combo-code` is `code` and `component-code` together, Observation's `patient` is `subject` where it names
a Patient (gateway/fhir/params.py `storage`): their rows repeated rows already stored (4 of an
Observation's ~11). Searches now read the rows of the parameters they are made of; this drops the repeats.
Downgrading makes them again from those rows (the same rows the indexer made).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

#: (resource type, parameter) -> (the parameters whose rows it reads, the one target type it keeps): what
#: params.storage derived from the R4 registry when this migration was written.
DERIVED = {
    ("Observation", "patient"): (("subject",), "Patient"),
    ("MedicationStatement", "patient"): (("subject",), "Patient"),
    ("DocumentReference", "patient"): (("subject",), "Patient"),
    ("AuditEvent", "patient"): (("agent", "entity"), "Patient"),
    ("Observation", "combo-code"): (("code", "component-code"), None),
    ("Observation", "combo-value-quantity"): (("component-value-quantity", "value-quantity"), None),
    ("Observation", "combo-value-concept"): (("component-value-concept", "value-concept"), None),
    ("Observation", "combo-data-absent-reason"):
        (("component-data-absent-reason", "data-absent-reason"), None),
}
_VALUES = "system, value, norm, low, high, number, target_type, target_id"


def upgrade() -> None:
    for (rt, code) in DERIVED:
        op.execute(sa.text("DELETE FROM fhir_index WHERE resource_type = :rt AND param = :code")
                   .bindparams(rt=rt, code=code))


def downgrade() -> None:
    for (rt, code), (parts, target) in DERIVED.items():
        names = ", ".join(f":p{i}" for i in range(len(parts)))
        restrict = " AND (target_type = :target OR (target_type IS NULL AND norm IS NULL))" if target else ""
        op.execute(sa.text(
            f"INSERT INTO fhir_index (resource_type, resource_id, param, {_VALUES}) "
            f"SELECT resource_type, resource_id, :code, {_VALUES} FROM fhir_index "
            f"WHERE resource_type = :rt AND param IN ({names}){restrict} ORDER BY pk"
        ).bindparams(rt=rt, code=code, **{f"p{i}": p for i, p in enumerate(parts)},
                     **({"target": target} if target else {})))
