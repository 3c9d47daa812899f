"""Atomic tasks (METHOD §1.1): identifier → conclusions of a chunk → one question per conclusion →
canonical answer → verification. Every candidate becomes a Task, verified or failed with its
reason; one candidate's malformed model output or failed model call never costs the chunk its other
candidates. Only the calls every candidate needs (identifier, conclusions) fail the whole unit.
"""

from __future__ import annotations

import math
from typing import Any

from taskcraft_core.errors import ModelCallFailed, ModelOutputError, ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.grounding import neighbourhood, regrounding_problem, uniqueness_problem
from taskcraft_core.generate.protocol import Conclusion
from taskcraft_core.generate.text import contains_answer, normalise_answer
from taskcraft_core.generate.verify import failed_task, output_failure, question_key, verified_task, verify
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document, Task, content_id
from taskcraft_core.store import TaskFilter

# Statuses of a candidate that passed verification (a person may have decided on it since).
VERIFIED_STATUSES = ("pending", "accepted", "rejected", "duplicate")


class NoCandidatesError(TaskCraftError):
    """A chunk gave no candidate conclusions (no extractable facts, or unreadable extractor output)."""


def generate_atomic(document: Document, chunk: Chunk, ctx: GenerationContext) -> list[Task]:
    """Every candidate of one chunk as a Task. Raises NoCandidatesError (with the reason) when the
    chunk has no candidates, GenerationCancelled when the run is cancelled midway (nothing of the
    chunk is returned then, so a resumed run redoes it whole)."""
    candidates_left, verified_left = document_budget(document, ctx)
    if candidates_left <= 0 or verified_left <= 0:
        raise NoCandidatesError(
            f"“{document.title}” has given this run its share of candidates already",
            hint="raise max_candidates_per_document or max_verified_per_document for more from one document")
    usage = Usage()
    try:
        identifier = ctx.engine.identify(document, usage.at("identify"))
        conclusions = ctx.engine.extract_conclusions(identifier, document, chunk, usage.at("conclusions"))
    except ModelCallFailed as failed:
        # No candidate exists yet to carry the failure: the unit fails, and a resume redoes it.
        raise ModelUnavailableError(failed.message, hint=failed.hint) from failed
    except ModelOutputError as malformed:
        raise NoCandidatesError(
            f"chunk {chunk.position} of “{document.title}”: the conclusion extractor's output was malformed: "
            f"{malformed.message}", hint=malformed.hint) from malformed
    finally:
        ctx.usage.merge(usage)
    if not conclusions:
        raise NoCandidatesError(
            f"chunk {chunk.position} of “{document.title}” has no extractable facts",
            hint="candidates need a sentence that states a date, a number with a unit, a year or a proper name")
    tasks: dict[str, Task] = {}
    for conclusion in [c for c in conclusions if not _in_previous_chunk(c, document, chunk, ctx)]:
        if len(tasks) >= candidates_left or sum(t.status == "pending" for t in tasks.values()) >= verified_left:
            break
        check_cancelled(ctx)
        task = candidate_task(identifier, document, chunk, conclusion, ctx)
        tasks.setdefault(task.id, task)  # two facts that led to the same question make one task
    return list(tasks.values())


def document_budget(document: Document, ctx: GenerationContext) -> tuple[int, int]:
    """(candidates, verified tasks) the run may still make from one document: the reference's caps
    (max_candidates_per_document, max_verified_per_document) less what the run has stored from it.
    Under a limit, a document's verified share is also at most its part of the limit (ceil(limit /
    documents)), so that the limit is spread over the documents instead of spent on the first."""
    settings = ctx.workspace.settings
    run = ctx.workspace.store.get_run(ctx.run_id) if ctx.run_id else None
    if run is None:
        return settings.max_candidates_per_document, settings.max_verified_per_document
    stored = ctx.workspace.store.task_counts(TaskFilter(run_ids=[run.id], document_ids=[document.id],
                                                        kinds=["atomic"]))
    verified = sum(n for (status, _kind), n in stored.items() if status in VERIFIED_STATUSES)
    limit, documents = run.config.request.limit, len(run.config.document_ids) or 1
    share = min(settings.max_verified_per_document, math.ceil(limit / documents)) if limit else \
        settings.max_verified_per_document
    return settings.max_candidates_per_document - sum(stored.values()), share - verified


def _in_previous_chunk(conclusion: Conclusion, document: Document, chunk: Chunk, ctx: GenerationContext) -> bool:
    """Whether a fact sits in the overlap with the previous chunk, where that chunk made it a candidate
    already (chunks overlap, so the same sentence would otherwise become two tasks)."""
    if chunk.position == 0 or conclusion.span_start is None or conclusion.span_end is None:
        return False
    previous = next((c for c in ctx.workspace.store.get_chunks(document.id) if c.position == chunk.position - 1), None)
    return (previous is not None and conclusion.span_end <= previous.end and conclusion.evidence in previous.text)


def candidate_task(identifier: str, document: Document, chunk: Chunk, conclusion: Conclusion,
                   ctx: GenerationContext) -> Task:
    """One conclusion through question, canonical answer and verification; model calls and tokens
    of this candidate are counted on its task."""
    usage = Usage()
    try:
        return _candidate(identifier, document, chunk, conclusion, ctx, usage)
    finally:
        ctx.usage.merge(usage)


def _candidate(identifier: str, document: Document, chunk: Chunk, conclusion: Conclusion, ctx: GenerationContext,
               usage: Usage) -> Task:
    fields: dict[str, Any] = {
        "id": content_id("atomic", "conclusion", normalise_answer(conclusion.answer), conclusion.relation, chunk.id),
        "kind": "atomic", "question": "", "golden_answer": conclusion.answer, "content_identifier": identifier,
        "relation": conclusion.relation, "engine": ctx.engine.name, "model": ctx.engine.model,
        "document_id": document.id, "chunk_id": chunk.id, "span_start": conclusion.span_start,
        "span_end": conclusion.span_end, "run_id": ctx.run_id,
    }
    if conclusion.span_start is None:
        reason = f"the answer “{conclusion.answer}” is not written in the chunk (not grounded)"
        return failed_task(fields, reason, usage)
    try:
        fields["question"] = ctx.engine.write_question(identifier, conclusion, usage.at("question"))
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("question writer output was malformed", malformed), usage)
    fields["id"] = content_id("atomic", question_key(fields["question"]), chunk.id)
    try:
        fields["golden_answer"] = ctx.engine.canonical_answer(fields["question"], conclusion, usage.at("canonical"))
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("answer refiner output was malformed", malformed), usage)
    if contains_answer(fields["golden_answer"], fields["question"]) or contains_answer(conclusion.answer,
                                                                                        fields["question"]):
        return failed_task(fields, "the question reveals its answer", usage)
    problem = regrounding_problem(fields["golden_answer"], conclusion) or uniqueness_problem(
        conclusion, identifier, neighbourhood(chunk, ctx.workspace.store.get_chunks(document.id)))
    if problem is not None:
        return failed_task(fields, problem, usage)
    try:
        outcome = verify(fields["question"], fields["golden_answer"], ctx, usage)
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("verification failed on malformed model output", malformed), usage)
    return verified_task(fields, outcome, usage)
