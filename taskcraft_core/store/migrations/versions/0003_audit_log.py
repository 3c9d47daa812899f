"""audit log; imported reviews marked

Revision ID: 0003_audit_log
Revises: 0002_document_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_log"
down_revision = "0006_task_lineage_replay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("imported", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("imported")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
