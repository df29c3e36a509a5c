"""profile records indexed by (profile_id, object_id) instead of profile_id

A native query for one profile's records, in the default objectId order, reads its page from this index
and has one plan for every profile (a prepared statement is then not planned again at each run).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ("allergy", "emergency_contact", "lab_result", "medical_document", "medication", "shared_access",
          "vaccination")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_profile_object", table, ["profile_id", "object_id"])
        op.drop_index(f"ix_{table}_profile_id", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_profile_id", table, ["profile_id"])
        op.drop_index(f"ix_{table}_profile_object", table_name=table)
