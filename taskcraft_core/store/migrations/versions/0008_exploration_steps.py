"""exploration_steps: a live-website exploration's trajectory; tasks.guideline: an explore task's family

Revision ID: 0008_exploration_steps
Revises: 0005_task_checks
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_exploration_steps"
down_revision = "0005_task_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exploration_steps",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("observation", sa.Text(), nullable=False),
        sa.Column("learned", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("document_id", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("screenshot", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # NULL for other kinds, and for explore tasks stored before it existed (their relation held the family).
    # A plain ADD COLUMN: the batch form rebuilds the table on SQLite, which drops tasks' cascading rows.
    op.add_column("tasks", sa.Column("guideline", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("tasks", "guideline")  # plain DROP COLUMN (SQLite 3.35+), for the same reason
    op.drop_table("exploration_steps")
