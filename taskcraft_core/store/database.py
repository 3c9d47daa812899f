"""The database owns the data: documents, chunks, tasks with trajectories, reviews and runs.

Any SQLAlchemy URL works; SQLite (the default) runs in WAL mode. The schema is created and
upgraded with Alembic on open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from pydantic import BaseModel, Field
from sqlalchemy import Engine, Text, and_, cast, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from taskcraft_core.store import tables as t
from taskcraft_core.store.checks import CheckStore, flagged_condition
from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.store.review_history import replay, standing
from taskcraft_core.schema import (
    Chunk,
    Decision,
    Document,
    GenerationRun,
    Review,
    Task,
    TrajectoryStep,
    Verification,
    utcnow,
)

MIGRATIONS = Path(__file__).parent / "migrations"


class TaskFilter(BaseModel):
    """The filters shared by the review queue, insights, export and the CLI."""

    statuses: list[str] = []
    kinds: list[str] = []
    min_difficulty: int | None = None
    max_difficulty: int | None = None
    hops: list[int] = []
    document_ids: list[str] = []
    run_ids: list[str] = []
    engines: list[str] = []
    reviewers: list[str] = []
    text: str = ""
    task_ids: list[str] = []
    checks: list[str] = Field([], description="Only tasks flagged by any of these checks ('any': by any check).")
    exclude_flagged: bool = Field(False, description="Leave out tasks flagged by any check.")
    sort: Literal["newest", "oldest", "difficulty_desc", "difficulty_asc"] = "oldest"


class DocumentSummary(BaseModel):
    """A row of the corpus list: a document without its text, with its chunk count."""

    id: str
    source: str
    title: str
    doc_type: str
    pages: int
    chunk_count: int
    characters: int


def _enable_sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store(CheckStore):
    """All reads and writes of the studio's records."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_wal)
        upgrade_schema(self.engine)

    # ---- documents and chunks -------------------------------------------------------------

    def add_document(self, document: Document, chunks: Sequence[Chunk]) -> bool:
        """Store a document with its chunks; False when the same content is already stored."""
        with self.engine.begin() as c:
            if c.scalar(select(t.documents.c.id).where(t.documents.c.content_hash == document.content_hash)):
                return False
            c.execute(insert(t.documents), [document.model_dump()])
            if chunks:
                c.execute(insert(t.chunks), [chunk.model_dump() for chunk in chunks])
        return True

    def list_documents(self) -> list[DocumentSummary]:
        counts = (
            select(t.chunks.c.document_id, func.count().label("n")).group_by(t.chunks.c.document_id).subquery()
        )
        query = (
            select(
                t.documents.c.id,
                t.documents.c.source,
                t.documents.c.title,
                t.documents.c.doc_type,
                t.documents.c.pages,
                func.coalesce(counts.c.n, 0).label("chunk_count"),
                func.length(t.documents.c.text).label("characters"),
            )
            .outerjoin(counts, counts.c.document_id == t.documents.c.id)
            .order_by(t.documents.c.created_at, t.documents.c.id)
        )
        with self.engine.connect() as c:
            return [DocumentSummary(**row._mapping) for row in c.execute(query)]

    def get_document(self, document_id: str) -> Document | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.documents).where(t.documents.c.id == document_id)).first()
        return Document(**row._mapping) if row else None

    def delete_document(self, document_id: str) -> bool:
        with self.engine.begin() as c:
            c.execute(delete(t.chunks).where(t.chunks.c.document_id == document_id))
            return c.execute(delete(t.documents).where(t.documents.c.id == document_id)).rowcount > 0

    def get_chunks(self, document_id: str) -> list[Chunk]:
        query = select(t.chunks).where(t.chunks.c.document_id == document_id).order_by(t.chunks.c.position)
        with self.engine.connect() as c:
            return [Chunk(**row._mapping) for row in c.execute(query)]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.chunks).where(t.chunks.c.id == chunk_id)).first()
        return Chunk(**row._mapping) if row else None

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[list[Chunk]]:
        """All chunks in batches, for rebuilding the vector index."""
        with self.engine.connect() as c:
            result = c.execution_options(stream_results=True).execute(
                select(t.chunks).order_by(t.chunks.c.document_id, t.chunks.c.position)
            )
            for rows in result.partitions(batch_size):
                yield [Chunk(**row._mapping) for row in rows]

    # ---- tasks ----------------------------------------------------------------------------

    def add_tasks(self, tasks: Iterable[Task], reviews: Sequence[Review] = ()) -> int:
        """Store tasks with trajectories and verifications; tasks whose id exists are skipped.
        `reviews` (at most one per task, e.g. decisions carried by an import) are appended to the
        new tasks they name, with their own reviewer and time, in the same transaction."""
        tasks = list(tasks)
        if not tasks:
            return 0
        with self.engine.begin() as c:
            return _insert_new_tasks(c, tasks, reviews)

    def get_task(self, task_id: str) -> Task | None:
        tasks = self.get_tasks([task_id])
        return tasks[0] if tasks else None

    def get_tasks(self, task_ids: Sequence[str], with_trajectory: bool = True) -> list[Task]:
        """Whole tasks (trajectory and verification included), in the order of the ids given."""
        with self.engine.connect() as c:
            rows = {row.id: row for row in c.execute(select(t.tasks).where(t.tasks.c.id.in_(task_ids)))}
            checks = {
                row.task_id: Verification(**row._mapping)
                for row in c.execute(select(t.verifications).where(t.verifications.c.task_id.in_(task_ids)))
            }
            steps: dict[str, list[TrajectoryStep]] = {}
            if with_trajectory:
                query = (
                    select(t.trajectory_steps)
                    .where(t.trajectory_steps.c.task_id.in_(task_ids))
                    .order_by(t.trajectory_steps.c.task_id, t.trajectory_steps.c.position)
                )
                for row in c.execute(query):
                    steps.setdefault(row.task_id, []).append(TrajectoryStep(**row._mapping))
        return [
            _task_from_row(rows[i], steps.get(i, []), checks.get(i)) for i in task_ids if i in rows
        ]

    def list_tasks(
        self, task_filter: TaskFilter | None = None, offset: int = 0, limit: int | None = 50,
        with_trajectory: bool = False,
    ) -> list[Task]:
        """One page of tasks matching the filter; paging happens in SQL."""
        query = select(t.tasks.c.id).where(*_conditions(task_filter or TaskFilter()))
        query = query.order_by(*_ordering(task_filter or TaskFilter())).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as c:
            ids = list(c.scalars(query))
        return self.get_tasks(ids, with_trajectory=with_trajectory)

    def list_task_ids(self, task_filter: TaskFilter | None = None) -> list[str]:
        query = select(t.tasks.c.id).where(*_conditions(task_filter or TaskFilter()))
        with self.engine.connect() as c:
            return list(c.scalars(query.order_by(*_ordering(task_filter or TaskFilter()))))

    def iter_tasks(self, task_filter: TaskFilter | None = None, batch_size: int = 500) -> Iterator[Task]:
        """Every matching task, whole, fetched a batch at a time (for export and indexing)."""
        ids = self.list_task_ids(task_filter)
        for start in range(0, len(ids), batch_size):
            yield from self.get_tasks(ids[start : start + batch_size])

    def count_tasks(self, task_filter: TaskFilter | None = None) -> int:
        query = select(func.count()).select_from(t.tasks).where(*_conditions(task_filter or TaskFilter()))
        with self.engine.connect() as c:
            return int(c.scalar(query) or 0)

    def task_counts(self, task_filter: TaskFilter | None = None) -> dict[tuple[str, str], int]:
        """Number of tasks per (status, kind)."""
        query = (
            select(t.tasks.c.status, t.tasks.c.kind, func.count())
            .where(*_conditions(task_filter or TaskFilter()))
            .group_by(t.tasks.c.status, t.tasks.c.kind)
        )
        with self.engine.connect() as c:
            return {(status, kind): n for status, kind, n in c.execute(query)}

    def task_columns(self, columns: Sequence[str], task_filter: TaskFilter | None = None) -> list[dict[str, Any]]:
        """Selected plain columns of every matching task: cheap input for plots."""
        query = select(*[t.tasks.c[name] for name in columns]).where(*_conditions(task_filter or TaskFilter()))
        with self.engine.connect() as c:
            return [dict(row._mapping) for row in c.execute(query)]

    def distinct_task_values(self, column: str) -> list[Any]:
        """The different values of one task column, sorted, without None (for filter widgets)."""
        with self.engine.connect() as c:
            return sorted(v for v in c.scalars(select(t.tasks.c[column]).distinct()) if v is not None)

    def tool_step_counts(self, task_filter: TaskFilter | None = None) -> dict[str, dict[str, int]]:
        """For each task, how many times each tool was called in its trajectory."""
        ids = select(t.tasks.c.id).where(*_conditions(task_filter or TaskFilter()))
        query = (
            select(t.trajectory_steps.c.task_id, t.trajectory_steps.c.tool, func.count())
            .where(t.trajectory_steps.c.task_id.in_(ids), t.trajectory_steps.c.type == "tool")
            .group_by(t.trajectory_steps.c.task_id, t.trajectory_steps.c.tool)
        )
        result: dict[str, dict[str, int]] = {}
        with self.engine.connect() as c:
            for task_id, tool, n in c.execute(query):
                result.setdefault(task_id, {})[tool or "?"] = n
        return result

    def children_of(self, task_id: str) -> list[str]:
        """Ids of tasks that name this task as a parent."""
        needle = f'%"{task_id}"%'
        with self.engine.connect() as c:
            return list(c.scalars(select(t.tasks.c.id).where(cast(t.tasks.c.parent_ids, Text).like(needle))))

    # ---- reviews --------------------------------------------------------------------------

    def record_review(
        self, task_id: str, reviewer: str, decision: Decision, *, reason: str = "",
        edits: dict[str, Any] | None = None, expected_latest: int | None = None, check_conflict: bool = True,
    ) -> Review:
        """Append a decision. With `check_conflict`, the decision applies only if nobody else
        decided since the reviewer saw `expected_latest`; otherwise `ReviewConflict` is raised."""
        reviewer = _reviewer_name(reviewer)
        with self.engine.begin() as c:
            row = _task_for_review(c, task_id)
            if check_conflict and row.latest_review_id != expected_latest:
                raise ReviewConflict(
                    f"Task {task_id} was decided by {row.last_reviewer} in the meantime.",
                    "Reload the task to see the newest decision.",
                )
            return _append_review(c, row, reviewer, decision, reason, edits or {})

    def record_reviews(
        self, task_ids: Sequence[str], reviewer: str, decision: Decision, *, reason: str = "",
        expected_latest: Mapping[str, int | None],
    ) -> list[Review]:
        """One decision on several tasks, all or none. Every task in `expected_latest` (those decided
        and any others the decision relies on) must still have the latest review it maps to;
        otherwise `ReviewConflict` names the changed tasks and nothing is recorded."""
        reviewer = _reviewer_name(reviewer)
        unseen = [task_id for task_id in task_ids if task_id not in expected_latest]
        if unseen:
            raise ValueError(f"No review state seen for {unseen}: the caller must say what it saw.")
        with self.engine.begin() as c:
            rows = {task_id: _task_for_review(c, task_id) for task_id in expected_latest}
            changed = [task_id for task_id, row in rows.items() if row.latest_review_id != expected_latest[task_id]]
            if changed:
                deciders = ", ".join(f"{task_id} by {rows[task_id].last_reviewer}" for task_id in changed)
                raise ReviewConflict(f"Decided in the meantime: {deciders}. Nothing was changed.",
                                     "Look again at the newest decisions, then decide.")
            return [_append_review(c, rows[task_id], reviewer, decision, reason, {}) for task_id in task_ids]

    def undo_review(self, review_id: int, reviewer: str) -> Review:
        """Take back one decision while it is the newest one in force on its task. If someone decided
        after it, or it was taken back already, `ReviewConflict` is raised and nothing changes."""
        reviewer = _reviewer_name(reviewer)
        with self.engine.begin() as c:
            task_id = c.scalar(select(t.reviews.c.task_id).where(t.reviews.c.id == review_id))
            if task_id is None:
                raise TaskCraftError(f"No review with id {review_id}.")
            row = _task_for_review(c, task_id)
            in_force = standing(_review_history(c, task_id))
            if review_id not in [review.id for review in in_force]:
                raise ReviewConflict(f"The decision on task {task_id} was already taken back.",
                                     "Reload the task to see the newest decision.")
            if in_force[-1].id != review_id:
                raise ReviewConflict(
                    f"Task {task_id} was decided by {in_force[-1].reviewer} after your decision; "
                    "undo would take back theirs, so theirs stands.",
                    "Reload the task to see the newest decision.",
                )
            return _append_review(c, row, reviewer, "undo", "", {})

    def latest_review_ids(self, task_ids: Sequence[str]) -> dict[str, int | None]:
        """The newest review of each task (None when undecided): what a later decision must expect."""
        query = select(t.tasks.c.id, t.tasks.c.latest_review_id).where(t.tasks.c.id.in_(task_ids))
        with self.engine.connect() as c:
            return {task_id: latest for task_id, latest in c.execute(query)}

    def standing_reviews(self, task_ids: Sequence[str] | None = None) -> dict[str, list[Review]]:
        """For each task that has reviews (among `task_ids`, or all): the decisions still in force
        after undos, oldest first; the last one is the decision in force."""
        query = select(t.reviews).order_by(t.reviews.c.id)
        if task_ids is not None:
            query = query.where(t.reviews.c.task_id.in_(task_ids))
        histories: dict[str, list[Review]] = {}
        with self.engine.connect() as c:
            for row in c.execute(query):
                histories.setdefault(row.task_id, []).append(Review(**row._mapping))
        return {task_id: standing(history) for task_id, history in histories.items()}

    def reviews_for(self, task_id: str) -> list[Review]:
        with self.engine.connect() as c:
            return _review_history(c, task_id)

    def all_reviews(self) -> list[Review]:
        with self.engine.connect() as c:
            return [Review(**row._mapping) for row in c.execute(select(t.reviews).order_by(t.reviews.c.id))]

    def data_version(self) -> tuple[int, int, int]:
        """Tasks, newest review id and runs: changes whenever tasks are added or decided (a cache key)."""
        with self.engine.connect() as c:
            return (int(c.scalar(select(func.count()).select_from(t.tasks)) or 0),
                    int(c.scalar(select(func.max(t.reviews.c.id))) or 0),
                    int(c.scalar(select(func.count()).select_from(t.runs)) or 0))

    # ---- runs -----------------------------------------------------------------------------

    def save_run(self, run: GenerationRun) -> None:
        """Insert or update a run record."""
        values = run.model_dump()
        with self.engine.begin() as c:
            if c.execute(update(t.runs).where(t.runs.c.id == run.id).values(values)).rowcount == 0:
                c.execute(insert(t.runs).values(values))

    def get_run(self, run_id: str) -> GenerationRun | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        return GenerationRun(**row._mapping) if row else None

    def list_runs(self, limit: int = 50) -> list[GenerationRun]:
        query = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as c:
            return [GenerationRun(**row._mapping) for row in c.execute(query)]

    def update_run(self, run_id: str, tasks: Sequence[Task] = (), **values: Any) -> int:
        """Change only the given columns of a run and store tasks (existing ids skipped), in one
        transaction: a finished work unit's tasks and its mark in `done_units` land together or not
        at all, and a cancel written by someone else is never overwritten. Returns tasks added."""
        with self.engine.begin() as c:
            # The write comes first so the transaction holds the write lock before it reads.
            if c.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values)).rowcount == 0:
                raise TaskCraftError(f"No generation run with id {run_id}.", "List runs with `runs`.")
            return _insert_new_tasks(c, tasks) if tasks else 0

    # ---- near-duplicate dismissals ---------------------------------------------------------

    def mark_not_duplicates(self, task_a: str, task_b: str, reviewer: str) -> None:
        a, b = sorted((task_a, task_b))
        with self.engine.begin() as c:
            exists = c.scalar(select(func.count()).select_from(t.not_duplicates).where(
                t.not_duplicates.c.task_a == a, t.not_duplicates.c.task_b == b))
            if not exists:
                c.execute(insert(t.not_duplicates).values(task_a=a, task_b=b, reviewer=reviewer, created_at=utcnow()))

    def not_duplicate_pairs(self) -> set[tuple[str, str]]:
        with self.engine.connect() as c:
            return {(row.task_a, row.task_b) for row in c.execute(select(t.not_duplicates))}


def _insert_new_tasks(c: Connection, tasks: Sequence[Task], reviews: Sequence[Review] = ()) -> int:
    """Insert the tasks whose ids are not stored yet (one row per id), and the given reviews of
    those tasks; returns how many tasks."""
    existing = set(c.scalars(select(t.tasks.c.id).where(t.tasks.c.id.in_([task.id for task in tasks]))))
    new = list({task.id: task for task in tasks if task.id not in existing}.values())
    if not new:
        return 0
    review_of = {review.task_id: review for review in reviews}
    if len(review_of) != len(reviews):
        raise ValueError("At most one review per task can be stored with new tasks.")
    c.execute(insert(t.tasks), [_task_row(task, review_of.get(task.id)) for task in new])
    decided = [review_of[task.id] for task in new if task.id in review_of]
    if decided:
        c.execute(insert(t.reviews), [review.model_dump(exclude={"id", "supersedes_id"}) for review in decided])
        newest = select(func.max(t.reviews.c.id)).where(t.reviews.c.task_id == t.tasks.c.id).scalar_subquery()
        c.execute(update(t.tasks).where(t.tasks.c.id.in_([r.task_id for r in decided])).values(latest_review_id=newest))
    steps = [step.model_dump() | {"task_id": task.id} for task in new for step in task.trajectory]
    if steps:
        c.execute(insert(t.trajectory_steps), steps)
    checks = [task.verification.model_dump() | {"task_id": task.id} for task in new if task.verification]
    if checks:
        c.execute(insert(t.verifications), checks)
    return len(new)


def _task_row(task: Task, review: Review | None = None) -> dict[str, Any]:
    """The row of a new task; with its first review, the state that review gives (its id is set
    once the review row exists)."""
    row = task.model_dump(exclude={"trajectory", "verification"})
    status, edits = replay([review], base_status=task.status) if review else (task.status, {})
    return row | {"status": status, "generated_status": task.status, "latest_review_id": None,
                  "last_reviewer": review.reviewer if review else None, "current_edits": edits}


def _task_from_row(row: Row, steps: list[TrajectoryStep], check: Verification | None) -> Task:
    values = dict(row._mapping)
    edits = values.pop("current_edits") or {}
    for key in ("generated_status", "latest_review_id", "last_reviewer"):
        values.pop(key)
    task = Task(**values, trajectory=steps, verification=check)
    # The edited text is what the task now says; the original stays in the review history.
    return task.model_copy(update={k: v for k, v in edits.items() if k in ("question", "golden_answer")})


def _same_latest(latest: int | None) -> Any:
    column = t.tasks.c.latest_review_id
    return column.is_(None) if latest is None else column == latest


def _reviewer_name(reviewer: str) -> str:
    if not reviewer.strip():
        raise TaskCraftError("A review needs the reviewer's name.", "Enter your name first.")
    return reviewer.strip()


def _task_for_review(c: Connection, task_id: str) -> Row:
    row = c.execute(select(t.tasks).where(t.tasks.c.id == task_id)).first()
    if row is None:
        raise TaskCraftError(f"No task with id {task_id}.")
    return row


def _append_review(c: Connection, row: Row, reviewer: str, decision: Decision, reason: str,
                   edits: dict[str, Any]) -> Review:
    """Insert a review after the task's newest one and rewrite the task's state from its history;
    `ReviewConflict` when another transaction decided the task in between."""
    review = Review(task_id=row.id, reviewer=reviewer, decision=decision, reason=reason, edits=edits,
                    supersedes_id=row.latest_review_id)
    review.id = c.execute(insert(t.reviews).values(review.model_dump(exclude={"id"}))).inserted_primary_key[0]
    status, current_edits = replay(_review_history(c, row.id), base_status=row.generated_status)
    changed = c.execute(
        update(t.tasks)
        .where(t.tasks.c.id == row.id, _same_latest(row.latest_review_id))
        .values(status=status, current_edits=current_edits, latest_review_id=review.id, last_reviewer=reviewer)
    ).rowcount
    if changed != 1:
        raise ReviewConflict(f"Task {row.id} was decided by someone else at the same moment.")
    return review


def _review_history(c: Connection, task_id: str) -> list[Review]:
    query = select(t.reviews).where(t.reviews.c.task_id == task_id).order_by(t.reviews.c.id)
    return [Review(**row._mapping) for row in c.execute(query)]


def _conditions(f: TaskFilter) -> list[Any]:
    c = t.tasks.c
    conditions: list[Any] = []
    for column, values in ((c.status, f.statuses), (c.kind, f.kinds), (c.hops, f.hops),
                           (c.document_id, f.document_ids), (c.run_id, f.run_ids), (c.engine, f.engines),
                           (c.last_reviewer, f.reviewers), (c.id, f.task_ids)):
        if values:
            conditions.append(column.in_(values))
    if f.min_difficulty is not None:
        conditions.append(c.difficulty >= f.min_difficulty)
    if f.max_difficulty is not None:
        conditions.append(c.difficulty <= f.max_difficulty)
    if f.text.strip():
        needle = f"%{f.text.strip()}%"
        conditions.append(or_(c.question.ilike(needle), c.content_identifier.ilike(needle),
                              cast(c.golden_answer, Text).ilike(needle)))
    if f.checks:
        conditions.append(flagged_condition(f.checks))
    if f.exclude_flagged:
        conditions.append(~flagged_condition(["any"]))
    return conditions or [and_(True)]


def _ordering(f: TaskFilter) -> list[Any]:
    c = t.tasks.c
    return {
        "newest": [c.created_at.desc(), c.id],
        "oldest": [c.created_at, c.id],
        "difficulty_desc": [c.difficulty.desc(), c.created_at, c.id],
        "difficulty_asc": [c.difficulty, c.created_at, c.id],
    }[f.sort]
