"""tasks.checks: the automatic pre-review checks a task failed (check name -> detail)

Revision ID: 0005_task_checks
Revises: 0004_review_rounds
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_task_checks"
down_revision = "0003_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: never checked (tasks stored before checks existed); {}: checked and clean.
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("checks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("checks")
