"""What an append-only review history means: the decisions still in force and the state they give.

Reviews are never changed or deleted; an "undo" row takes back the newest decision still in force.
This module is the one place that replays a history; the store keeps its result on the task row
(status, edits, whether the task waits for adjudication) and in `review_votes` (each reviewer's
decision in force), and hands out the standing decisions (`Store.standing_reviews`) to export and
insights.

With `reviews_per_task` k = 1 the newest decision in force sets the status. With k > 1 each
reviewer has one vote (their newest decision in force; deciding again changes it), a task is final
once k votes agree, disputed when k or more votes are in and no decision has k of them, and an
adjudicator's decision in force settles it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taskcraft_core.schema import Decision, Review, TaskStatus

# Decisions that set a task's status (votes); "edit" changes only the text, "undo" takes one back.
DECISION_STATUS: dict[Decision, TaskStatus] = {"accept": "accepted", "reject": "rejected", "duplicate": "duplicate"}


@dataclass(frozen=True)
class Outcome:
    """The state a history gives a task."""

    status: TaskStatus
    edits: dict[str, Any] = field(default_factory=dict)
    votes: dict[str, Review] = field(default_factory=dict)  # reviewer -> their decision in force
    disputed: bool = False  # k votes are in and they disagree: the task waits for an adjudicator


def standing(history: Sequence[Review]) -> list[Review]:
    """The decisions still in force, oldest first, from one task's history in the order it was written."""
    applied: list[Review] = []
    for review in history:
        if review.decision == "undo":
            if applied:
                applied.pop()
        else:
            applied.append(review)
    return applied


def votes(in_force: Sequence[Review]) -> dict[str, Review]:
    """Each reviewer's newest status-setting decision in force; adjudications are not votes."""
    current: dict[str, Review] = {}
    for review in in_force:
        if review.decision in DECISION_STATUS and not review.adjudication:
            current[review.reviewer] = review
    return current


def replay(history: Sequence[Review], base_status: TaskStatus, reviews_per_task: int = 1) -> Outcome:
    """The state that follows from a task's history, starting from its generated status."""
    in_force = standing(history)
    edits: dict[str, Any] = {}
    for review in in_force:
        edits.update(review.edits)
    current = votes(in_force)
    deciding = [review for review in in_force if review.decision in DECISION_STATUS]
    if reviews_per_task <= 1:
        status = DECISION_STATUS[deciding[-1].decision] if deciding else base_status
        return Outcome(status, edits, current)
    adjudications = [review for review in deciding if review.adjudication]
    if adjudications:
        return Outcome(DECISION_STATUS[adjudications[-1].decision], edits, current)
    ranked = Counter(review.decision for review in current.values()).most_common()
    if ranked and ranked[0][1] >= reviews_per_task and (len(ranked) == 1 or ranked[1][1] < ranked[0][1]):
        return Outcome(DECISION_STATUS[ranked[0][0]], edits, current)
    return Outcome(base_status, edits, current, disputed=len(current) >= reviews_per_task)
