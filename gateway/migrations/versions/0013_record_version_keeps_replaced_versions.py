"""record_version keeps the versions a change replaced, not the current one

Every write used to store the version it made, so a new record wrote its whole content a second time (the
current version is the record's own row, and the FHIR face's history is fhir_history). Now a change stores
the version it replaces (DESIGN.md: every change keeps the prior version), and a new record writes none.
This drops the rows that repeat a record's current version; an update would otherwise store its prior
version under the same key. Downgrading leaves the table as it is: the code before read only past
versions from it (a MedicalDocument's earlier files).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

#: class name (record_version.class_name) -> its table, for every class when this migration was written.
TABLES = {
    "Allergy": "allergy", "Vaccination": "vaccination", "Medication": "medication", "LabResult": "lab_result",
    "MedicalDocument": "medical_document", "EmergencyContact": "emergency_contact", "Provider": "provider",
    "Profile": "profile", "SharedAccess": "shared_access", "AuditLog": "audit_log", "_User": "user_account",
    "_Session": "user_session",
}


def upgrade() -> None:
    for class_name, table in TABLES.items():
        op.execute(sa.text(
            f"DELETE FROM record_version WHERE class_name = :class_name AND EXISTS (SELECT 1 FROM {table} t "
            f"WHERE t.object_id = record_version.object_id AND t.version = record_version.version)"
        ).bindparams(class_name=class_name))


def downgrade() -> None:
    pass
