"""task lineage and replay: regenerated_from / regeneration_reason / stale on tasks, the replays table

Revision ID: 0006_task_lineage_replay
Revises: 0004_review_rounds
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_task_lineage_replay"
down_revision = "0007_document_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite (foreign keys on) re-creating `tasks` drops the
    # old table and cascades the drop into trajectories, verifications and reviews.
    op.add_column("tasks", sa.Column("regenerated_from", sa.String(length=32), nullable=True))
    op.add_column("tasks", sa.Column("regeneration_reason", sa.Text(), nullable=True))
    op.add_column("tasks", sa.Column("stale", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_tasks_regenerated_from", "tasks", ["regenerated_from"])
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(length=32), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("holds", sa.Boolean(), nullable=False),
        sa.Column("judge_rationale", sa.Text(), nullable=False),
        sa.Column("tool_steps", sa.Integer(), nullable=False),
        sa.Column("trajectory", sa.JSON(), nullable=False),
        sa.Column("engine", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_replays_task", "replays", ["task_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_replays_task", table_name="replays")
    op.drop_table("replays")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_regenerated_from")
        batch.drop_column("stale")
        batch.drop_column("regeneration_reason")
        batch.drop_column("regenerated_from")
