"""review rounds: several reviewers per task, adjudication, overrides

Revision ID: 0004_review_rounds
Revises: 0002_document_state

Reviews name the state they were made on (`seen_review_id`) and say whether they were a deliberate
override or an adjudicator's decision; tasks say whether their votes disagree (`disputed`);
`review_votes` holds each reviewer's decision in force, filled here from the existing histories.
Two indexes let the review queue find its card without sorting every pending task.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_review_rounds"
down_revision = "0002_document_state"
branch_labels = None
depends_on = None

VOTE_DECISIONS = ("accept", "reject", "duplicate")


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite (foreign keys on) re-creating `tasks` would
    # drop the old table and cascade the drop into reviews, trajectories and verifications.
    op.add_column("reviews", sa.Column("seen_review_id", sa.Integer(), nullable=True))
    op.add_column("reviews", sa.Column("override", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("reviews", sa.Column("adjudication", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("tasks", sa.Column("disputed", sa.Boolean(), nullable=False, server_default=sa.false()))
    votes = op.create_table(
        "review_votes",
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "reviewer"),
    )
    op.create_index("ix_review_votes_reviewer", "review_votes", ["reviewer", "task_id"], unique=False)
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at", "id"], unique=False)
    op.create_index("ix_tasks_status_difficulty", "tasks", ["status", "difficulty", "created_at", "id"], unique=False)
    op.bulk_insert(votes, _votes_in_force())


def _votes_in_force() -> list[dict[str, object]]:
    """Each reviewer's newest decision in force per task, replaying undos as the store does."""
    rows = op.get_bind().execute(sa.text("SELECT id, task_id, reviewer, decision FROM reviews ORDER BY id"))
    in_force: dict[str, list[tuple[int, str, str]]] = {}
    for review_id, task_id, reviewer, decision in rows:
        applied = in_force.setdefault(task_id, [])
        if decision == "undo":
            if applied:
                applied.pop()
        else:
            applied.append((review_id, reviewer, decision))
    current: dict[tuple[str, str], dict[str, object]] = {}
    for task_id, applied in in_force.items():
        for review_id, reviewer, decision in applied:
            if decision in VOTE_DECISIONS:
                current[(task_id, reviewer)] = {"task_id": task_id, "reviewer": reviewer, "decision": decision,
                                                "review_id": review_id}
    return list(current.values())


def downgrade() -> None:
    op.drop_index("ix_tasks_status_difficulty", table_name="tasks")
    op.drop_index("ix_tasks_status_created", table_name="tasks")
    op.drop_index("ix_review_votes_reviewer", table_name="review_votes")
    op.drop_table("review_votes")
    op.drop_column("tasks", "disputed")
    for column in ("adjudication", "override", "seen_review_id"):
        op.drop_column("reviews", column)
