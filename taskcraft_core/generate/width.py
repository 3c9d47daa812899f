"""Width extension (METHOD §1.4): merge 2–3 verified tasks into one question asking for all their
answers. The golden answer is the list of the originals' own answers, in the originals' order (the
reference mixed answers between groups; here each group carries its own tasks, nothing else).
Checks: the merged question decomposes back into the originals, reveals none of the answers, and
the model alone cannot answer it while the agent can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from taskcraft_core.errors import ModelOutputError
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.text import contains_answer, normalise_answer
from taskcraft_core.generate.verify import failed_task, output_failure, question_key, verified_task, verify
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task, content_id

DECOMPOSE_SIMILARITY = 80  # rapidfuzz token_set_ratio a recovered sub-question must reach
GROUPABLE_STATUSES = ("pending", "accepted")


def group_for_width(tasks: Sequence[Task], ctx: GenerationContext) -> list[list[Task]]:
    """Disjoint groups of `width_group_size` verified atomic tasks: each group starts from the first
    task left and adds the closest compatible ones, where a task on the same identifier is always
    closer than any other (then cosine similarity of the questions in the index's embedding).
    Tasks whose question would reveal another's answer are never grouped."""
    pool = sorted((t for t in tasks if t.kind == "atomic" and t.status in GROUPABLE_STATUSES), key=lambda t: t.id)
    size = ctx.workspace.settings.width_group_size
    if len(pool) < size:
        return []
    vectors = np.asarray(ctx.workspace.index.embedding_function([t.question for t in pool]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    closeness = vectors @ vectors.T + np.array(
        [[1.0 if a.content_identifier == b.content_identifier else 0.0 for b in pool] for a in pool])
    left = list(range(len(pool)))
    groups: list[list[Task]] = []
    while len(left) >= size:
        members = [left.pop(0)]
        while len(members) < size:
            fitting = [i for i in left if all(compatible(pool[i], pool[m]) for m in members)]
            if not fitting:
                break
            best = max(fitting, key=lambda i: (sum(closeness[i, m] for m in members), -i))
            members.append(best)
            left.remove(best)
        if len(members) == size:
            groups.append([pool[i] for i in members])
    return groups


def compatible(a: Task, b: Task) -> bool:
    """Two tasks can share a merged question when their answers differ (a golden answer ['YAML',
    'YAML'] asks one thing twice) and neither question gives away the other's answer."""
    if _answer_key(a.golden_answer) == _answer_key(b.golden_answer):
        return False
    return not (_reveals(a.question, b.golden_answer) or _reveals(b.question, a.golden_answer))


def _answer_key(answer: str | list[str]) -> str:
    return normalise_answer(answer if isinstance(answer, str) else "; ".join(answer))


def extend_width(group: Sequence[Task], ctx: GenerationContext) -> Task:
    """One width task from a group, verified or failed with its reason."""
    usage = Usage()
    try:
        return _extend(list(group), ctx, usage)
    finally:
        ctx.usage.merge(usage)


def _extend(group: list[Task], ctx: GenerationContext, usage: Usage) -> Task:
    questions = [t.question for t in group]
    golden = [t.golden_answer if isinstance(t.golden_answer, str) else "; ".join(t.golden_answer) for t in group]
    fields = _fields(group, golden, ctx)
    hops = max(t.hops for t in group)
    try:
        fields["question"] = ctx.engine.merge_width(questions, usage.at("width_merge"))
        fields["id"] = content_id("width", question_key(fields["question"]), *sorted(t.id for t in group))
        parts = ctx.engine.decompose_width(fields["question"], usage.at("decompose"))
        problem = decomposition_problem(parts, questions)
        if problem is None and any(_reveals(fields["question"], answer) for answer in golden):
            problem = "the merged question reveals an answer"
        if problem is not None:
            return failed_task(fields, problem, usage, hops=hops, width=len(group))
        outcome = verify(fields["question"], golden, ctx, usage)
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("model output was malformed", malformed), usage, hops=hops,
                           width=len(group))
    return verified_task(fields, outcome, usage, hops=hops, width=len(group))


def decomposition_problem(parts: Sequence[str], questions: Sequence[str]) -> str | None:
    """None when the merged question splits back into the originals, in order."""
    if len(parts) != len(questions):
        return f"the merged question splits into {len(parts)} questions, not {len(questions)}"
    for number, (part, original) in enumerate(zip(parts, questions, strict=False), start=1):
        similarity = fuzz.token_set_ratio(part.lower(), original.lower())
        if similarity < DECOMPOSE_SIMILARITY:
            return f"sub-question {number} is distorted (similarity {similarity:.0f} < {DECOMPOSE_SIMILARITY})"
    return None


def _reveals(question: str, answer: str | list[str]) -> bool:
    return any(contains_answer(part, question) for part in ([answer] if isinstance(answer, str) else answer))


def _fields(group: list[Task], golden: list[str], ctx: GenerationContext) -> dict[str, Any]:
    documents = {t.document_id for t in group}
    return {
        "id": content_id("width", "group", *sorted(t.id for t in group)),
        "kind": "width", "question": "", "golden_answer": golden,
        "content_identifier": "; ".join(dict.fromkeys(t.content_identifier for t in group)),
        "relation": " | ".join(t.relation for t in group), "engine": ctx.engine.name, "model": ctx.engine.model,
        # The evidence of each answer stays on its parent; a single source is kept when all share one.
        "document_id": documents.pop() if len(documents) == 1 else None,
        "parent_ids": [t.id for t in group], "run_id": ctx.run_id,
    }
