"""Reviews: append-only decisions, each naming the decision it was made on; undo and conflicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.schema import (
    Decision,
    Review,
    utcnow,
)
from taskcraft_core.store import tables as t
from taskcraft_core.store.review_history import replay, standing
from taskcraft_core.store.review_rounds import check_basis, insert_review, lock_task, review_histories, write_votes


class ReviewStore:
    """Decisions on tasks, and dismissed near-duplicate pairs."""

    engine: Engine

    def record_review(
        self, task_id: str, reviewer: str, decision: Decision, *, reason: str = "",
        edits: dict[str, Any] | None = None, expected_latest: int | None = None, override: bool = False,
        adjudication: bool = False, reviews_per_task: int = 1,
    ) -> Review:
        """Append a decision made on the state `expected_latest` (the review it was made on, None for
        an undecided task; see `review_rounds.basis`). If that state changed, `ReviewConflict` is
        raised and nothing is written, unless `override`: then the decision is recorded as a
        deliberate override of the state it names."""
        reviewer = _reviewer_name(reviewer)
        with self.engine.begin() as c:
            lock_task(c, task_id)
            row = _task_for_review(c, task_id)
            if not override:
                check_basis(c, row, reviewer, decision, expected_latest, adjudication=adjudication,
                            reviews_per_task=reviews_per_task)
            return _append_review(c, row, reviewer, decision, reason, edits or {}, reviews_per_task,
                                  seen=expected_latest, override=override, adjudication=adjudication)

    def record_reviews(
        self, task_ids: Sequence[str], reviewer: str, decision: Decision, *, reason: str = "",
        expected_latest: Mapping[str, int | None], reviews_per_task: int = 1,
    ) -> list[Review]:
        """One decision on several tasks, all or none. Every task in `expected_latest` (those decided
        and any others the decision relies on) must still have the latest review it maps to;
        otherwise `ReviewConflict` names the changed tasks and nothing is recorded."""
        reviewer = _reviewer_name(reviewer)
        unseen = [task_id for task_id in task_ids if task_id not in expected_latest]
        if unseen:
            raise ValueError(f"No review state seen for {unseen}: the caller must say what it saw.")
        with self.engine.begin() as c:
            for task_id in sorted(expected_latest):
                lock_task(c, task_id)
            rows = {task_id: _task_for_review(c, task_id) for task_id in expected_latest}
            changed = [task_id for task_id, row in rows.items() if row.latest_review_id != expected_latest[task_id]]
            if changed:
                deciders = ", ".join(f"{task_id} by {rows[task_id].last_reviewer}" for task_id in changed)
                raise ReviewConflict(f"Decided in the meantime: {deciders}. Nothing was changed.",
                                     "Look again at the newest decisions, then decide.")
            return [_append_review(c, rows[task_id], reviewer, decision, reason, {}, reviews_per_task,
                                   seen=expected_latest[task_id]) for task_id in task_ids]

    def undo_review(self, review_id: int, reviewer: str, reviews_per_task: int = 1) -> Review:
        """Take back one decision while it is the newest one in force on its task. If someone decided
        after it, or it was taken back already, `ReviewConflict` is raised and nothing changes."""
        reviewer = _reviewer_name(reviewer)
        with self.engine.begin() as c:
            task_id = c.scalar(select(t.reviews.c.task_id).where(t.reviews.c.id == review_id))
            if task_id is None:
                raise TaskCraftError(f"No review with id {review_id}.")
            lock_task(c, task_id)
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
            return _append_review(c, row, reviewer, "undo", "", {}, reviews_per_task, seen=row.latest_review_id)

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
                   edits: dict[str, Any], reviews_per_task: int, *, seen: int | None, override: bool = False,
                   adjudication: bool = False) -> Review:
    """Insert a review after the task's newest one and rewrite the task's state and votes from its
    history; `ReviewConflict` when another transaction decided the task in between."""
    review = Review(task_id=row.id, reviewer=reviewer, decision=decision, reason=reason, edits=edits,
                    supersedes_id=row.latest_review_id, seen_review_id=seen, override=override,
                    adjudication=adjudication)
    review.id = insert_review(c, review)
    outcome = replay(_review_history(c, row.id), row.generated_status, reviews_per_task)
    changed = c.execute(
        update(t.tasks)
        .where(t.tasks.c.id == row.id, _same_latest(row.latest_review_id))
        .values(status=outcome.status, current_edits=outcome.edits, disputed=outcome.disputed,
                latest_review_id=review.id, last_reviewer=reviewer)
    ).rowcount
    if changed != 1:
        raise ReviewConflict(f"Task {row.id} was decided by someone else at the same moment.")
    write_votes(c, {row.id: outcome})
    return review


def _review_history(c: Connection, task_id: str) -> list[Review]:
    return review_histories(c, [task_id]).get(task_id, [])
