"""The review queue: filters to a TaskFilter, one card at a time, moving through the queue,
evidence split for highlighting and trajectories prepared for display.

The queue is the filtered, sorted task list; a position is an offset into it and every card is one
SQL page of size one, so a 36,000-task store never loads whole.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from taskcraft_core.errors import PermissionDenied
from taskcraft_core.generate.difficulty import MAX_LEVEL
from taskcraft_core.schema import Chunk, Decision, Review, Task, TrajectoryStep
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.store.review_history import standing, votes
from taskcraft_core.store.review_rounds import is_vote

Queue = Literal["review", "adjudicate"]

MAX_DIFFICULTY = MAX_LEVEL
SORTS: dict[str, str] = {
    "oldest": "Oldest first",
    "newest": "Newest first",
    "difficulty_desc": "Hardest first",
    "difficulty_asc": "Easiest first",
}
REJECT_REASONS: tuple[str, ...] = (
    "Answer is wrong",
    "Question is ambiguous",
    "Answer leaks into the question",
    "Answerable without tools",
    "Evidence does not support the answer",
    "Duplicate",
    "Other",
)
EVIDENCE_CONTEXT_CHARS = 600
STEP_TEXT_LIMIT = 2_000


class FilterOptions(BaseModel):
    """Values the filter widgets can choose from, read with DISTINCT queries."""

    hops: list[int]
    run_ids: list[str]
    engines: list[str]
    reviewers: list[str]


def filter_options(store: Store) -> FilterOptions:
    values = store.distinct_task_values
    return FilterOptions(hops=values("hops"), run_ids=values("run_id"), engines=values("engine"),
                         reviewers=values("last_reviewer"))


def build_filter(
    *, statuses: Sequence[str] = (), kinds: Sequence[str] = (), difficulty: tuple[int, int] = (1, MAX_DIFFICULTY),
    hops: Sequence[int] = (), document_ids: Sequence[str] = (), run_ids: Sequence[str] = (),
    engines: Sequence[str] = (), reviewers: Sequence[str] = (), text: str = "", sort: str = "oldest",
) -> TaskFilter:
    """A TaskFilter from widget values; the full difficulty range means no difficulty filter."""
    low, high = difficulty
    return TaskFilter(
        statuses=list(statuses), kinds=list(kinds), hops=list(hops), document_ids=list(document_ids),
        run_ids=list(run_ids), engines=list(engines), reviewers=list(reviewers), text=text, sort=sort,
        min_difficulty=low if low > 1 else None, max_difficulty=high if high < MAX_DIFFICULTY else None,
    )


def describe_filter(task_filter: TaskFilter, document_titles: Mapping[str, str] | None = None) -> str:
    """What a filter keeps, in one line ("status pending · kind depth · oldest first")."""
    f, titles = task_filter, document_titles or {}

    def named(label: str, values: Sequence[Any]) -> str:
        return f"{label} {', '.join(str(v) for v in values)}"

    parts = [named(label, values) for label, values in (("status", f.statuses), ("kind", f.kinds), ("hops", f.hops),
                                                        ("engine", f.engines), ("reviewer", f.reviewers)) if values]
    if f.min_difficulty is not None or f.max_difficulty is not None:
        parts.append(f"difficulty {f.min_difficulty or 1}–{f.max_difficulty or MAX_DIFFICULTY}")
    if f.document_ids:
        parts.append(titles.get(f.document_ids[0], f.document_ids[0]) if len(f.document_ids) == 1
                     else f"{len(f.document_ids)} documents")
    if f.run_ids:
        parts.append(f"run {f.run_ids[0]}" if len(f.run_ids) == 1 else f"{len(f.run_ids)} runs")
    if f.text.strip():
        parts.append(f'text "{f.text.strip()}"')
    return " · ".join([*(parts or ["all tasks"]), SORTS[f.sort].lower()])


# ---- evidence and trajectory display -----------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """The chunk text around the answer's evidence, split so the span can be highlighted."""

    before: str
    span: str
    after: str
    page: int

    def to_html(self) -> str:
        """Escaped pieces with the span in a <mark>: safe to render as HTML."""
        pieces = (html.escape(self.before), html.escape(self.span), html.escape(self.after))
        return '<div style="white-space: pre-wrap">{}<mark>{}</mark>{}</div>'.format(*pieces)


def split_evidence(chunk: Chunk, span_start: int | None, span_end: int | None,
                   context: int = EVIDENCE_CONTEXT_CHARS) -> Evidence:
    """Cut the chunk around the span (document offsets); without a usable span, show the chunk's start."""
    text = chunk.text
    if span_start is None or span_end is None or not (chunk.start <= span_start <= span_end <= chunk.end):
        return Evidence(before=text[:context * 2], span="", after="", page=chunk.page)
    start, end = span_start - chunk.start, span_end - chunk.start
    window_start, window_end = max(0, start - context), min(len(text), end + context)
    before = ("…" if window_start else "") + text[window_start:start]
    after = text[end:window_end] + ("…" if window_end < len(text) else "")
    return Evidence(before=before, span=text[start:end], after=after, page=chunk.page)


def evidence_for(store: Store, task: Task) -> Evidence | None:
    if not task.chunk_id:
        return None
    chunk = store.get_chunk(task.chunk_id)
    return split_evidence(chunk, task.span_start, task.span_end) if chunk else None


def _truncate(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit] + "…", True)


@dataclass(frozen=True)
class StepView:
    """One trajectory step ready to show: long texts cut, arguments as pretty JSON."""

    number: int
    type: str
    thought: str
    tool: str | None
    args: str
    observation: str
    truncated: bool
    latency_ms: float
    tokens: int
    hop: int

    @property
    def action(self) -> str:
        return self.tool or self.type

    @property
    def title(self) -> str:
        return f"Step {self.number} · hop {self.hop} · {self.action} · {self.latency_ms:.0f} ms · {self.tokens} tokens"


def step_views(steps: Sequence[TrajectoryStep], limit: int = STEP_TEXT_LIMIT) -> list[StepView]:
    views = []
    for number, step in enumerate(steps, start=1):
        thought, cut_thought = _truncate(step.content, limit)
        observation, cut_observation = _truncate(step.observation or "", limit)
        args = json.dumps(step.args, indent=2, ensure_ascii=False) if step.args else ""
        views.append(StepView(
            number=number, type=step.type, thought=thought, tool=step.tool, args=args, observation=observation,
            truncated=cut_thought or cut_observation, latency_ms=step.latency_ms, tokens=step.tokens, hop=step.hop,
        ))
    return views


def highlight_differences(a: str, b: str) -> tuple[str, str]:
    """Two texts as escaped HTML, words only in one of them wrapped in <mark> (for side-by-side views)."""
    words_a, words_b = re.findall(r"\S+|\s+", a), re.findall(r"\S+|\s+", b)
    marked_a: list[str] = []
    marked_b: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes():
        for words, start, end, out in ((words_a, i1, i2, marked_a), (words_b, j1, j2, marked_b)):
            piece = html.escape("".join(words[start:end]))
            out.append(piece if op == "equal" or not piece else f"<mark>{piece}</mark>")
    return "".join(marked_a), "".join(marked_b)


# ---- queues --------------------------------------------------------------------------------------


def may_adjudicate(settings: Settings, reviewer: str) -> bool:
    """Whether this reviewer may settle disputed tasks (a named adjudicator)."""
    return bool(reviewer) and reviewer in settings.adjudicators


def queue_filter(task_filter: TaskFilter, queue: Queue, reviewer: str, reviews_per_task: int) -> TaskFilter:
    """The tasks a queue holds. Adjudicate: the disputed tasks, whatever else is filtered on status.
    Review with several reviews per task: the reviewer's own queue, tasks they have not decided and
    that wait for no adjudicator. With one review per task: the filter as it is."""
    if queue == "adjudicate":
        return task_filter.model_copy(update={"disputed": True, "statuses": []})
    if reviews_per_task > 1:
        return task_filter.model_copy(update={"undecided_by": reviewer, "disputed": False})
    return task_filter


# ---- cards and moving through the queue -------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """Everything the review card shows for one task."""

    task: Task
    position: int | None  # None when the task was opened directly (lineage, undo, duplicates, links)
    total: int
    latest_review_id: int | None  # the task's newest review: what an edit or adjudication is made on
    own_review_id: int | None  # the reviewer's own newest review: what their vote is made on (k > 1)
    parent_ids: list[str]
    child_ids: list[str]
    evidence: Evidence | None
    steps: list[StepView] = field(default_factory=list)
    history: list[Review] = field(default_factory=list)  # every review of the task, oldest first
    disputed: bool = False

    @property
    def votes(self) -> list[Review]:
        """Each reviewer's decision in force, oldest first (what an adjudicator weighs)."""
        return sorted(votes(standing(self.history)).values(), key=lambda review: review.id or 0)

    def own_vote(self, reviewer: str) -> Review | None:
        return next((review for review in self.votes if review.reviewer == reviewer), None)

    def seen(self, decision: Decision, reviews_per_task: int, adjudication: bool = False) -> int | None:
        """The state a decision from this card is made on."""
        vote = is_vote(decision, adjudication, reviews_per_task)
        return self.own_review_id if vote else self.latest_review_id


def clamp(position: int, total: int) -> int:
    return max(0, min(position, total - 1)) if total else 0


def load_card(store: Store, task_filter: TaskFilter, position: int, pinned_id: str | None = None,
              reviewer: str = "") -> Card | None:
    """The pinned task if any, else the task at `position` in the queue (clamped); None when empty.
    `reviewer` is who looks at it: their own newest review is the state their vote is made on."""
    total = store.count_tasks(task_filter)
    if pinned_id:
        tasks = store.get_tasks([pinned_id])
        position_shown: int | None = None
    else:
        position_shown = clamp(position, total)
        tasks = store.list_tasks(task_filter, offset=position_shown, limit=1, with_trajectory=True) if total else []
    if not tasks:
        return None
    task = tasks[0]
    history = store.reviews_for(task.id)
    own = [review.id for review in history if review.reviewer == reviewer]
    return Card(
        task=task, position=position_shown, total=total, latest_review_id=history[-1].id if history else None,
        own_review_id=own[-1] if own else None, parent_ids=list(task.parent_ids),
        child_ids=store.children_of(task.id), evidence=evidence_for(store, task), steps=step_views(task.trajectory),
        history=history, disputed=store.is_disputed(task.id),
    )


def still_in_queue(store: Store, task_filter: TaskFilter, task_id: str) -> bool:
    return store.count_tasks(task_filter.model_copy(update={"task_ids": [task_id]})) == 1


def position_after_decision(store: Store, task_filter: TaskFilter, task_id: str, position: int) -> int:
    """Where "next" is once the task at `position` is decided: if it left the queue, the next task
    has slid into its place."""
    return position + 1 if still_in_queue(store, task_filter, task_id) else position


def decide(store: Store, settings: Settings, card: Card, reviewer: str, decision: Decision, *, reason: str = "",
           edits: dict[str, Any] | None = None, override: bool = False, adjudication: bool = False) -> Review:
    """Record a decision made on the card; `ReviewConflict` if the state it was made on changed
    (unless `override`), `PermissionDenied` for an adjudication by someone who may not adjudicate."""
    if adjudication and not may_adjudicate(settings, reviewer):
        raise PermissionDenied(f"{reviewer or 'This reviewer'} may not adjudicate.",
                               "An admin can add you to the adjudicators in the settings.")
    k = settings.reviews_per_task
    return store.record_review(card.task.id, reviewer, decision, reason=reason, edits=edits,
                               expected_latest=card.seen(decision, k, adjudication), override=override,
                               adjudication=adjudication, reviews_per_task=k)


def undo(store: Store, settings: Settings, review_id: int, reviewer: str) -> Review:
    """Take back a decision this session made (by its review id); `ReviewConflict` when someone
    decided the task after it, whose decision then stands."""
    return store.undo_review(review_id, reviewer, reviews_per_task=settings.reviews_per_task)


def reject_reason(choice: str, details: str) -> str:
    """The stored reason: the listed reason, plus the reviewer's own words when given."""
    details = details.strip()
    return f"{choice}: {details}" if details else choice


def edits_from_form(task: Task, question: str, answer_text: str) -> dict[str, Any]:
    """The fields an edit changes; a width task's answer is one line per sub-answer."""
    answer: str | list[str] = (
        [line.strip() for line in answer_text.splitlines() if line.strip()]
        if isinstance(task.golden_answer, list) else answer_text.strip()
    )
    edits: dict[str, Any] = {}
    if question.strip() != task.question:
        edits["question"] = question.strip()
    if answer != task.golden_answer:
        edits["golden_answer"] = answer
    return edits


def answer_as_text(answer: str | list[str]) -> str:
    return "\n".join(answer) if isinstance(answer, list) else answer
