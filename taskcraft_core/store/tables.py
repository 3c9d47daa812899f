"""SQLAlchemy table definitions; the migrations in `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", Text, nullable=False),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("doc_type", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("page_offsets", JSON, nullable=False),
    Column("links", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("aliases", JSON, nullable=False),
    Column("page_title", Text),
    Column("heading", Text),
    Column("site_name", Text),
    # "indexing" from the moment the rows are written until the chunk vectors are in the index,
    # then "ready"; only ready documents count as present (see store/document_state.py).
    Column("state", String(16), nullable=False, server_default="ready"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("document_id", String(32), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("page", Integer, nullable=False),
    Column("start", Integer, nullable=False),
    Column("end", Integer, nullable=False),
    Index("ix_chunks_document", "document_id", "position"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("question", Text, nullable=False),
    Column("golden_answer", JSON, nullable=False),
    Column("content_identifier", Text, nullable=False),
    Column("relation", Text, nullable=False),
    Column("hops", Integer, nullable=False),
    Column("width", Integer, nullable=False),
    Column("difficulty", Integer, nullable=False),
    Column("difficulty_inputs", JSON, nullable=False),
    Column("engine", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("status", String(32), nullable=False),
    Column("failure_reason", Text),
    Column("document_id", String(32)),
    Column("chunk_id", String(40)),
    Column("span_start", Integer),
    Column("span_end", Integer),
    Column("parent_ids", JSON, nullable=False),
    Column("run_id", String(32)),
    Column("model_calls", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Denormalised from the append-only reviews table, rewritten in the same transaction as each
    # review, so queues and filters never replay history.
    Column("generated_status", String(32), nullable=False),
    Column("latest_review_id", Integer),
    Column("last_reviewer", String(200)),
    Column("current_edits", JSON, nullable=False),
    # Lineage of a regeneration (the rejected task it was made from, and the reason given) and
    # whether a replay found that the task's answer no longer holds.
    Column("regenerated_from", String(32)),
    Column("regeneration_reason", Text),
    Column("stale", Boolean, nullable=False, server_default=false()),
    # With several reviews per task: k votes are in and disagree, so the task waits for an adjudicator.
    Column("disputed", Boolean, nullable=False, server_default=false()),
    # The automatic pre-review checks the task failed (name -> detail); NULL when never checked.
    Column("checks", JSON),
    # The guideline family of an explore task (feature_use, information_retrieval, ...); NULL for other kinds.
    Column("guideline", String(32)),
    Index("ix_tasks_status_kind", "status", "kind"),
    Index("ix_tasks_regenerated_from", "regenerated_from"),
    Index("ix_tasks_run", "run_id"),
    Index("ix_tasks_document", "document_id"),
    Index("ix_tasks_created", "created_at"),
    # The review queue is a status filter read in created or difficulty order, one row at an offset:
    # these make its first card an index walk instead of a sort of every pending task.
    Index("ix_tasks_status_created", "status", "created_at", "id"),
    Index("ix_tasks_status_difficulty", "status", "difficulty", "created_at", "id"),
)

trajectory_steps = Table(
    "trajectory_steps",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("tool", String(100)),
    Column("args", JSON),
    Column("observation", Text),
    Column("latency_ms", Float, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("hop", Integer, nullable=False),
)

verifications = Table(
    "verifications",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("model_alone_answer", Text, nullable=False),
    Column("model_alone_score", Integer, nullable=False),
    Column("agent_answer", Text, nullable=False),
    Column("agent_score", Integer, nullable=False),
    Column("judge_rationale", Text, nullable=False),
    Column("agent_steps", Integer, nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("edits", JSON, nullable=False),
    Column("supersedes_id", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("seen_review_id", Integer),
    Column("override", Boolean, nullable=False, server_default=false()),
    Column("adjudication", Boolean, nullable=False, server_default=false()),
    # Set on decisions that came in with an import: "history" (kept for the record, not in force)
    # or "decision" (an admin imported it as it was, in force).
    Column("imported", String(16)),
    Index("ix_reviews_task", "task_id", "id"),
)

# Each reviewer's decision in force on a task (their vote), rewritten from the history with every
# review of the task: per-reviewer queues and agreement read it without replaying histories.
review_votes = Table(
    "review_votes",
    metadata,
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("reviewer", String(200), primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("review_id", Integer, nullable=False),
    Index("ix_review_votes_reviewer", "reviewer", "task_id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("config", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("counts", JSON, nullable=False),
    Column("done_units", JSON, nullable=False),
    Column("error", Text),
    Column("model_calls", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

not_duplicates = Table(
    "not_duplicates",
    metadata,
    Column("task_a", String(32), primary_key=True),
    Column("task_b", String(32), primary_key=True),
    Column("reviewer", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

replays = Table(
    "replays",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(32), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("answer", Text, nullable=False),
    Column("score", Integer, nullable=False),
    Column("holds", Boolean, nullable=False),
    Column("judge_rationale", Text, nullable=False),
    Column("tool_steps", Integer, nullable=False),
    Column("trajectory", JSON, nullable=False),
    Column("engine", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_replays_task", "task_id", "id"),
)


audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_log_at", "at"),
)


# The trajectory of a live-website exploration, one row per step, in order (see schema.ExplorationStep).
exploration_steps = Table(
    "exploration_steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("turn", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("args", JSON, nullable=False),
    Column("observation", Text, nullable=False),
    Column("learned", Text, nullable=False),
    Column("fingerprint", String(64)),
    Column("document_id", String(32)),
    Column("error", Text),
    Column("screenshot", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
