"""Depth extension (METHOD §1.3): make the identifier itself something to find.

One hop: backward search (passages of other documents that mention the identifier) → a superset
and a relation that points to the identifier → merge (the identifier in the question is replaced
by the description) → checks, cheapest first: not a synonym, no leak of the identifier or the
answer, the relation points to exactly one thing, the merged question still asks the same, the
auxiliary question is solvable by the agent → the merged question is re-tested (model alone must
fail, agent must succeed). Up to `max_hops` hops, `hop_attempts` attempts each.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz

from taskcraft_core.errors import ModelOutputError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.protocol import Superset
from taskcraft_core.generate.text import contains_answer, normalise_answer
from taskcraft_core.generate.verify import Outcome, failed_task, question_key, verified_task, verify
from taskcraft_core.index.vectors import Passage
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task, TrajectoryStep, content_id

SYNONYM_SIMILARITY = 90  # rapidfuzz ratio from which a superset counts as another name of the identifier
SEARCH_PER_ATTEMPT = 4


def extend_depth(task: Task, ctx: GenerationContext) -> list[Task]:
    """New depth tasks from one verified task, hop after hop: every attempt that reached a merged
    question is returned (failed ones with their reason); each hop builds on the previous hop's
    accepted task (parent_ids). Stops at the first hop without an accepted attempt."""
    settings = ctx.workspace.settings
    made: list[Task] = []
    current, used_documents = task, {task.document_id}
    for hop in range(1, settings.max_hops + 1):
        accepted = None
        for passage in backward_search(current.content_identifier, used_documents, ctx)[: settings.hop_attempts]:
            check_cancelled(ctx)
            attempt = depth_attempt(current, passage, hop, ctx)
            if attempt is not None:
                made.append(attempt)
                if attempt.status == "pending":
                    accepted, used_documents = attempt, used_documents | {passage.document_id}
                    break
        if accepted is None:
            break
        current = accepted
    return made


def backward_search(identifier: str, used_documents: set[str | None], ctx: GenerationContext) -> list[Passage]:
    """Passages of other documents whose text mentions the identifier (a cheap filter before any
    model sees them), best first, one per document."""
    limit = ctx.workspace.settings.hop_attempts * SEARCH_PER_ATTEMPT
    found: dict[str, Passage] = {}
    for passage in ctx.workspace.index.search_chunks(identifier, k=limit):
        if passage.document_id in used_documents or passage.document_id in found:
            continue
        other_subject = normalise_answer(passage.title) != normalise_answer(identifier)
        if other_subject and contains_answer(identifier, passage.text):
            found[passage.document_id] = passage
    return list(found.values())


def depth_attempt(current: Task, passage: Passage, hop: int, ctx: GenerationContext) -> Task | None:
    """One attempt at one hop; None when the passage offers no superset at all."""
    usage = Usage()
    try:
        return _attempt(current, passage, hop, ctx, usage)
    finally:
        ctx.usage.merge(usage)


def _attempt(current: Task, passage: Passage, hop: int, ctx: GenerationContext, usage: Usage) -> Task | None:
    engine, identifier = ctx.engine, current.content_identifier
    try:
        superset = engine.find_superset(identifier, passage, usage.at("superset"))
    except ModelOutputError:
        return None  # nothing was proposed, so there is no candidate to record
    if superset is None:
        return None
    fields = _fields(current, superset, ctx)
    try:
        fields["question"] = engine.merge_depth(current.question, identifier, superset, usage.at("depth_merge"))
    except ModelOutputError as malformed:
        return failed_task(fields, f"merge output was malformed: {malformed.message}", usage, hops=current.hops + 1)
    fields["id"] = content_id("depth", question_key(fields["question"]), current.id)
    try:
        return _checked(current, superset, fields, hop, ctx, usage)
    except ModelOutputError as malformed:
        return failed_task(fields, f"a check failed on malformed model output: {malformed.message}", usage,
                           hops=current.hops + 1)


def _checked(current: Task, superset: Superset, fields: dict[str, Any], hop: int, ctx: GenerationContext,
             usage: Usage) -> Task:
    engine, identifier, hops = ctx.engine, current.content_identifier, current.hops + 1
    problem = superset_problem(identifier, superset, fields["question"], current.golden_answer)
    if problem is None:
        nearby = ctx.workspace.index.search_chunks(superset.evidence or superset.description, k=5)
        validity = engine.check_superset(identifier, superset, nearby, usage.at("superset_check"))
        problem = None if validity.ok else f"superset check: {validity.reason}"
    if problem is not None:
        return failed_task(fields, problem, usage, hops=hops)
    # The one-call semantic check before the auxiliary verification (model alone, agent, judges).
    semantic = engine.check_depth_merge(current.question, fields["question"], identifier,
                                        _text(current.golden_answer), usage.at("semantic_check"))
    if not semantic.ok:
        return failed_task(fields, f"semantic check: {semantic.reason}", usage, hops=hops)
    auxiliary = verify(superset.aux_question, identifier, ctx, usage.at("auxiliary"), hop=hop)
    if not auxiliary.accepted:
        return failed_task(fields, f"auxiliary question: {auxiliary.reason}", usage, hops=hops)
    retest = verify(fields["question"], current.golden_answer, ctx, usage)
    chained = Outcome(retest.verification, chain(auxiliary.trajectory, current.trajectory), retest.accepted,
                      retest.reason, retest.tool_steps)
    return verified_task(fields, chained, usage, hops=hops)


def superset_problem(identifier: str, superset: Superset, merged: str, answer: str | list[str]) -> str | None:
    """The checks that need no model: a real generalisation, and nothing given away."""
    name, ident = normalise_answer(superset.superset), normalise_answer(identifier)
    if not name or name == ident or fuzz.ratio(name, ident) >= SYNONYM_SIMILARITY or ident in name:
        return f"superset “{superset.superset}” is the identifier itself or another name of it"
    if contains_answer(identifier, merged):
        return f"the merged question still names the identifier “{identifier}”"
    if contains_answer(identifier, superset.aux_question) or contains_answer(identifier, superset.description):
        return "the auxiliary question or description names the identifier"
    if any(contains_answer(part, merged) for part in ([answer] if isinstance(answer, str) else answer)):
        return "the merged question reveals the answer"
    return None


def chain(auxiliary: list[TrajectoryStep], core: list[TrajectoryStep]) -> list[TrajectoryStep]:
    """The solving trajectory of a depth task: the new (innermost) hop's steps first, then the steps
    of the task it extends, renumbered in order."""
    return [step.model_copy(update={"position": position}) for position, step in enumerate([*auxiliary, *core])]


def _fields(current: Task, superset: Superset, ctx: GenerationContext) -> dict[str, Any]:
    return {
        "id": content_id("depth", "superset", normalise_answer(superset.superset), current.id),
        "kind": "depth", "question": "", "golden_answer": current.golden_answer,
        "content_identifier": superset.superset, "relation": f"{superset.relation} → {current.relation}",
        "engine": ctx.engine.name, "model": ctx.engine.model, "document_id": current.document_id,
        "chunk_id": current.chunk_id, "span_start": current.span_start, "span_end": current.span_end,
        "parent_ids": [current.id], "run_id": ctx.run_id,
    }


def _text(answer: str | list[str]) -> str:
    return answer if isinstance(answer, str) else "; ".join(answer)
