"""Review rounds in the store: the state a decision is checked against, each reviewer's vote, and
the full decision histories export and insights read.

`Store` mixes in `ReviewRoundStore` for the reads; the write path in `database.py` calls the
helpers below inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from taskcraft_core.errors import ReviewConflict
from taskcraft_core.schema import Decision, Review
from taskcraft_core.store import tables as t
from taskcraft_core.store.review_history import DECISION_STATUS, Outcome


def lock_task(c: Connection, task_id: str) -> None:
    """Take the write lock before reading what a decision is checked against: two deciders are
    serialised (SQLite waits on its busy timeout, PostgreSQL on the row lock) instead of both
    reading the same state and one failing, or silently winning, afterwards."""
    c.execute(update(t.tasks).where(t.tasks.c.id == task_id).values(latest_review_id=t.tasks.c.latest_review_id))


def own_latest_review(c: Connection, task_id: str, reviewer: str) -> int | None:
    query = select(func.max(t.reviews.c.id)).where(t.reviews.c.task_id == task_id, t.reviews.c.reviewer == reviewer)
    return c.scalar(query)


def is_vote(decision: Decision, adjudication: bool, reviews_per_task: int) -> bool:
    """A decision counted per reviewer: with several reviews per task, reviewers decide independently."""
    return reviews_per_task > 1 and decision in DECISION_STATUS and not adjudication


def basis(c: Connection, row: Row, reviewer: str, decision: Decision, *, adjudication: bool = False,
          reviews_per_task: int = 1) -> int | None:
    """The review a decision must have been made on. One review per task, an edit, or an adjudication:
    the task's newest review. A vote among several: the reviewer's own newest review of the task, so
    other reviewers deciding the same task in parallel are no conflict, but the same reviewer in two
    windows is."""
    if is_vote(decision, adjudication, reviews_per_task):
        return own_latest_review(c, row.id, reviewer)
    return row.latest_review_id


def check_basis(c: Connection, row: Row, reviewer: str, decision: Decision, seen: int | None, *,
                adjudication: bool, reviews_per_task: int) -> None:
    """`ReviewConflict` when the state the decision names is not the state now."""
    now = basis(c, row, reviewer, decision, adjudication=adjudication, reviews_per_task=reviews_per_task)
    if now == seen:
        return
    newest = c.execute(select(t.reviews).where(t.reviews.c.id == now)).first() if now is not None else None
    said = "no decision" if seen is None else f"review {seen}"
    if newest is None:
        change = "its decisions were taken back"
    else:
        change = f"{newest.reviewer} recorded {newest.decision} (review {newest.id})"
    raise ReviewConflict(
        f"Task {row.id} changed since the state this decision was made on ({said}): {change}.",
        "Reload the task to see the newest decision, or decide again as a deliberate override.",
        current_review_id=now,
    )


def insert_review(c: Connection, review: Review) -> int:
    inserted = c.execute(insert(t.reviews).values(review.model_dump(exclude={"id"}))).inserted_primary_key
    assert inserted is not None  # an insert into a table with an autoincrement key returns the key
    return int(inserted[0])


def write_votes(c: Connection, outcomes: dict[str, Outcome]) -> None:
    """Replace the votes of these tasks with the ones their outcomes hold."""
    if not outcomes:
        return
    c.execute(delete(t.review_votes).where(t.review_votes.c.task_id.in_(list(outcomes))))
    rows = [{"task_id": task_id, "reviewer": reviewer, "decision": review.decision, "review_id": review.id}
            for task_id, outcome in outcomes.items() for reviewer, review in outcome.votes.items()]
    if rows:
        c.execute(insert(t.review_votes), rows)


def review_histories(c: Connection, task_ids: Sequence[str]) -> dict[str, list[Review]]:
    """Every review of these tasks (those that have any), oldest first."""
    query = select(t.reviews).where(t.reviews.c.task_id.in_(task_ids)).order_by(t.reviews.c.id)
    histories: dict[str, list[Review]] = {}
    for row in c.execute(query):
        histories.setdefault(row.task_id, []).append(Review(**row._mapping))
    return histories


class ReviewRoundStore:
    """Reads of votes and decision histories (mixed into `Store`)."""

    engine: Engine

    def decision_basis(self, task_id: str, reviewer: str, decision: Decision, *, adjudication: bool = False,
                       reviews_per_task: int = 1) -> int | None:
        """The review a decision by this reviewer is made on now (what to pass as `expected_latest`)."""
        with self.engine.connect() as c:
            row = c.execute(select(t.tasks).where(t.tasks.c.id == task_id)).first()
            if row is None:
                return None
            return basis(c, row, reviewer.strip(), decision, adjudication=adjudication,
                         reviews_per_task=reviews_per_task)

    def is_disputed(self, task_id: str) -> bool:
        with self.engine.connect() as c:
            return bool(c.scalar(select(t.tasks.c.disputed).where(t.tasks.c.id == task_id)))

    def votes_for(self, task_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """For each of these tasks with votes: reviewer -> their decision in force."""
        query = select(t.review_votes).where(t.review_votes.c.task_id.in_(task_ids))
        result: dict[str, dict[str, str]] = {}
        with self.engine.connect() as c:
            for row in c.execute(query.order_by(t.review_votes.c.review_id)):
                result.setdefault(row.task_id, {})[row.reviewer] = row.decision
        return result

    def all_votes(self) -> dict[str, dict[str, str]]:
        """Every task's votes (task -> reviewer -> decision in force): the input of agreement."""
        result: dict[str, dict[str, str]] = {}
        with self.engine.connect() as c:
            for row in c.execute(select(t.review_votes).order_by(t.review_votes.c.review_id)):
                result.setdefault(row.task_id, {})[row.reviewer] = row.decision
        return result

    def review_histories(self, task_ids: Sequence[str]) -> dict[str, list[Review]]:
        """Every review of these tasks, oldest first: undos, edits, overrides and adjudications included."""
        with self.engine.connect() as c:
            return review_histories(c, task_ids)
