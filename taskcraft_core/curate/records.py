"""The JSONL record contract: one task, its source, trajectory, verification, its final decision
(`review`) and every decision made on it (`reviews`), as one JSON object. Every export format is
built from these records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from taskcraft_core.generate.checks import run_checks
from taskcraft_core.schema import Review, Task, guideline_of
from taskcraft_core.store import Store
from taskcraft_core.store.review_history import DECISION_STATUS, standing

IMPORTED_KEY = "imported"  # difficulty_inputs entry holding what an import could not map elsewhere
EXPORT_BATCH = 1000

Record = dict[str, Any]


def final_review(history: Sequence[Review], status: str) -> Review | None:
    """The decision in force: an adjudicator's if one stands, else the newest standing review; None
    while votes are in but the task is not decided yet (several reviews per task, no agreement)."""
    in_force = standing(history)
    adjudications = [review for review in in_force if review.adjudication]
    if adjudications:
        return adjudications[-1]
    waiting = status not in DECISION_STATUS.values() and any(r.decision in DECISION_STATUS for r in in_force)
    return in_force[-1] if in_force and not waiting else None


def _review_record(review: Review | None) -> Record | None:
    if review is None:
        return None
    return {"reviewer": review.reviewer, "decision": review.decision, "reason": review.reason,
            "edits": review.edits, "time": review.created_at.isoformat(), "override": review.override,
            "adjudication": review.adjudication}


def _source_title(task: Task, titles: dict[str, str]) -> str | None:
    if task.document_id in titles:
        return titles[task.document_id]
    return task.difficulty_inputs.get(IMPORTED_KEY, {}).get("source_title")


def build_record(task: Task, titles: dict[str, str], history: Sequence[Review]) -> Record:
    """The contract record of one task, from the task, the document titles and its review history."""
    check = task.verification
    return {
        "id": task.id, "kind": task.kind, "question": task.question, "golden_answer": task.golden_answer,
        "content_identifier": task.content_identifier, "relation": task.relation,
        "guideline": guideline_of(task),  # an explore task's family (feature_use, ...); None for other kinds
        "hops": task.hops,
        "difficulty": task.difficulty, "engine": task.engine, "model": task.model, "status": task.status,
        "source": {"document_id": task.document_id, "title": _source_title(task, titles),
                   "chunk_id": task.chunk_id, "start": task.span_start, "end": task.span_end},
        "parents": list(task.parent_ids),
        "trajectory": [{"type": s.type, "content": s.content, "tool": s.tool, "args": s.args,
                        "observation": s.observation} for s in task.trajectory],
        "verification": None if check is None else {
            "model_alone_answer": check.model_alone_answer, "model_alone_score": check.model_alone_score,
            "agent_answer": check.agent_answer, "agent_score": check.agent_score},
        "review": _review_record(final_review(history, task.status)),
        "reviews": [_review_record(review) for review in history],
        # The automatic pre-review checks the task fails (name -> detail); {} when clean. A task
        # stored before checks existed is checked now.
        "checks": dict(task.checks if task.checks is not None else run_checks(task)),
    }


def task_record(task: Task, store: Store) -> Record:
    """The JSONL contract record of one task (edited question and answer are what it says now)."""
    document = store.get_document(task.document_id) if task.document_id else None
    titles = {document.id: document.title} if document else {}
    return build_record(task, titles, store.reviews_for(task.id))


def iter_records(store: Store, task_ids: Sequence[str], batch_size: int = EXPORT_BATCH) -> Iterator[Record]:
    """Records of the given tasks in order, fetched and built a batch at a time."""
    titles = store.document_titles()
    for start in range(0, len(task_ids), batch_size):
        batch = task_ids[start : start + batch_size]
        histories = store.review_histories(batch)
        for task in store.get_tasks(batch):
            yield build_record(task, titles, histories.get(task.id, []))
