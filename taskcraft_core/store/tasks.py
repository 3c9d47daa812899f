"""Tasks with trajectories and verifications: stored once per id, filtered and paged in SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine, Text, and_, cast, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from taskcraft_core.schema import (
    Review,
    Task,
    TrajectoryStep,
    Verification,
)
from taskcraft_core.store import tables as t
from taskcraft_core.store.review_history import replay
from taskcraft_core.store.review_rounds import insert_review, review_histories, write_votes


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
    undecided_by: str | None = None  # a reviewer's own queue: tasks they have no decision in force on
    disputed: bool | None = None  # True: the Adjudicate queue; False: tasks not waiting for adjudication
    sort: Literal["newest", "oldest", "difficulty_desc", "difficulty_asc"] = "oldest"


class TaskStore:
    """Reads and writes of tasks."""

    engine: Engine

    def add_tasks(self, tasks: Iterable[Task], reviews: Sequence[Review] = (), reviews_per_task: int = 1) -> int:
        """Store tasks with trajectories and verifications; tasks whose id exists are skipped.
        `reviews` (each task's history in order, e.g. the decisions an import carries) are appended
        to the new tasks they name, with their own reviewer and time, in the same transaction."""
        tasks = list(tasks)
        if not tasks:
            return 0
        with self.engine.begin() as c:
            return insert_new_tasks(c, tasks, reviews, reviews_per_task)

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


def insert_new_tasks(c: Connection, tasks: Sequence[Task], reviews: Sequence[Review] = (),
                     reviews_per_task: int = 1) -> int:
    """Insert the tasks whose ids are not stored yet (one row per id), and the given reviews of
    those tasks in order; returns how many tasks."""
    existing = set(c.scalars(select(t.tasks.c.id).where(t.tasks.c.id.in_([task.id for task in tasks]))))
    new = list({task.id: task for task in tasks if task.id not in existing}.values())
    if not new:
        return 0
    histories: dict[str, list[Review]] = {}
    for review in reviews:
        histories.setdefault(review.task_id, []).append(review)
    c.execute(insert(t.tasks), [_task_row(task, histories.get(task.id, []), reviews_per_task) for task in new])
    decided = [task.id for task in new if task.id in histories]
    for task_id in decided:  # one review at a time, so supersedes_id chains each history
        for review in histories[task_id]:
            newest = c.scalar(select(func.max(t.reviews.c.id)).where(t.reviews.c.task_id == task_id))
            insert_review(c, review.model_copy(update={"supersedes_id": newest}))
    if decided:
        newest_id = select(func.max(t.reviews.c.id)).where(t.reviews.c.task_id == t.tasks.c.id).scalar_subquery()
        c.execute(update(t.tasks).where(t.tasks.c.id.in_(decided)).values(latest_review_id=newest_id))
        statuses = {task.id: task.status for task in new}
        write_votes(c, {task_id: replay(history, statuses[task_id], reviews_per_task)
                        for task_id, history in review_histories(c, decided).items()})
    steps = [step.model_dump() | {"task_id": task.id} for task in new for step in task.trajectory]
    if steps:
        c.execute(insert(t.trajectory_steps), steps)
    checks = [task.verification.model_dump() | {"task_id": task.id} for task in new if task.verification]
    if checks:
        c.execute(insert(t.verifications), checks)
    return len(new)


def _task_row(task: Task, history: Sequence[Review] = (), reviews_per_task: int = 1) -> dict[str, Any]:
    """The row of a new task; with its reviews, the state they give (the newest review's id is set
    once the review rows exist)."""
    row = task.model_dump(exclude={"trajectory", "verification"})
    outcome = replay(history, task.status, reviews_per_task)
    return row | {"status": outcome.status, "generated_status": task.status, "latest_review_id": None,
                  "last_reviewer": history[-1].reviewer if history else None, "current_edits": outcome.edits,
                  "disputed": outcome.disputed}


def _task_from_row(row: Row, steps: list[TrajectoryStep], check: Verification | None) -> Task:
    values = dict(row._mapping)
    edits = values.pop("current_edits") or {}
    for key in ("generated_status", "latest_review_id", "last_reviewer", "disputed"):
        values.pop(key)
    task = Task(**values, trajectory=steps, verification=check)
    # The edited text is what the task now says; the original stays in the review history.
    return task.model_copy(update={k: v for k, v in edits.items() if k in ("question", "golden_answer")})


def _conditions(f: TaskFilter) -> list[Any]:
    c = t.tasks.c
    conditions: list[Any] = []
    for column, values in ((c.status, f.statuses), (c.kind, f.kinds), (c.hops, f.hops),
                           (c.document_id, f.document_ids), (c.run_id, f.run_ids), (c.engine, f.engines),
                           (c.last_reviewer, f.reviewers), (c.id, f.task_ids)):
        if values:
            conditions.append(column.in_(values))
    if f.undecided_by is not None:
        votes = t.review_votes.c
        conditions.append(~select(votes.task_id).where(votes.task_id == c.id, votes.reviewer == f.undecided_by)
                          .exists())
    if f.disputed is not None:
        conditions.append(c.disputed == f.disputed)
    if f.min_difficulty is not None:
        conditions.append(c.difficulty >= f.min_difficulty)
    if f.max_difficulty is not None:
        conditions.append(c.difficulty <= f.max_difficulty)
    if f.text.strip():
        needle = f"%{f.text.strip()}%"
        conditions.append(or_(c.question.ilike(needle), c.content_identifier.ilike(needle),
                              cast(c.golden_answer, Text).ilike(needle)))
    return conditions or [and_(True)]


def _ordering(f: TaskFilter) -> list[Any]:
    c = t.tasks.c
    orderings: dict[str, list[Any]] = {
        "newest": [c.created_at.desc(), c.id],
        "oldest": [c.created_at, c.id],
        "difficulty_desc": [c.difficulty.desc(), c.created_at, c.id],
        "difficulty_asc": [c.difficulty, c.created_at, c.id],
    }
    return orderings[f.sort]
