"""Atomic tasks (METHOD §1.1): identifier → conclusions of a chunk → one question per conclusion →
canonical answer → verification. Every candidate becomes a Task, verified or failed with its
reason; one candidate's malformed model output never costs the chunk its other candidates.
"""

from __future__ import annotations

from typing import Any

from taskcraft_core.errors import ModelOutputError, TaskCraftError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.grounding import neighbourhood, regrounding_problem, uniqueness_problem
from taskcraft_core.generate.protocol import Conclusion
from taskcraft_core.generate.text import contains_answer, normalise_answer
from taskcraft_core.generate.verify import failed_task, question_key, verified_task, verify
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document, Task, content_id


class NoCandidatesError(TaskCraftError):
    """A chunk gave no candidate conclusions (no extractable facts, or unreadable extractor output)."""


def generate_atomic(document: Document, chunk: Chunk, ctx: GenerationContext) -> list[Task]:
    """Every candidate of one chunk as a Task. Raises NoCandidatesError (with the reason) when the
    chunk has no candidates, GenerationCancelled when the run is cancelled midway (nothing of the
    chunk is returned then, so a resumed run redoes it whole)."""
    usage = Usage()
    try:
        identifier = ctx.engine.identify(document, usage.at("identify"))
        conclusions = ctx.engine.extract_conclusions(identifier, document, chunk, usage.at("conclusions"))
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
        check_cancelled(ctx)
        task = candidate_task(identifier, document, chunk, conclusion, ctx)
        tasks.setdefault(task.id, task)  # two facts that led to the same question make one task
    return list(tasks.values())


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
        return failed_task(fields, f"question writer output was malformed: {malformed.message}", usage)
    fields["id"] = content_id("atomic", question_key(fields["question"]), chunk.id)
    try:
        fields["golden_answer"] = ctx.engine.canonical_answer(fields["question"], conclusion, usage.at("canonical"))
    except ModelOutputError as malformed:
        return failed_task(fields, f"answer refiner output was malformed: {malformed.message}", usage)
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
        return failed_task(fields, f"verification failed on malformed model output: {malformed.message}", usage)
    return verified_task(fields, outcome, usage)
