"""What an append-only review history means: the decisions still in force and the state they give.

Reviews are never changed or deleted; an "undo" row takes back the newest decision still in force.
Decisions imported as history (`imported == "history"`) are kept but never in force.
This module is the one place that replays a history; the store keeps its result on the task row
and hands out the standing decisions (`Store.standing_reviews`) to export and insights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskcraft_core.schema import Decision, Review, TaskStatus

# Decisions that set a task's status; "edit" changes only the text, "undo" takes one back.
DECISION_STATUS: dict[Decision, TaskStatus] = {"accept": "accepted", "reject": "rejected", "duplicate": "duplicate"}


def standing(history: Sequence[Review]) -> list[Review]:
    """The decisions still in force, oldest first, from one task's history in the order it was written."""
    applied: list[Review] = []
    for review in history:
        if review.imported == "history":  # another studio's decision, kept for the record only
            continue
        if review.decision == "undo":
            if applied:
                applied.pop()
        else:
            applied.append(review)
    return applied


def replay(history: Sequence[Review], base_status: TaskStatus) -> tuple[TaskStatus, dict[str, Any]]:
    """The status and text edits that follow from a task's history, starting from its generated status."""
    status = base_status
    edits: dict[str, Any] = {}
    for review in standing(history):
        status = DECISION_STATUS.get(review.decision, status)
        edits.update(review.edits)
    return status, edits
