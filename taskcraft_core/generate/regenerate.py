"""Regenerate from a rejection: a new candidate from the rejected task's evidence, written with the
reviewer's reason as feedback, verified like any candidate, and linked to the rejected task.

The fact is rebuilt from the task (its answer, relation and the sentence around its evidence
span), so no extraction call is spent. The question writer gets the rejected question and the
reason (the LLM engine puts both into its prompt). A regeneration must differ from the rejected
task: when the writer gives the same question again (the offline engine's writer is a function of
the sentence), the other facts of the same chunk are tried in order, then those of the document's
other chunks, so another sentence or another answer is picked.
"""

from __future__ import annotations

from collections.abc import Iterator

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.atomic import candidate_task
from taskcraft_core.generate.context import AcceptanceRule, GenerationContext
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.protocol import Conclusion, Engine
from taskcraft_core.generate.text import sentences
from taskcraft_core.generate.verify import question_key
from taskcraft_core.index.task_vectors import index_tasks
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Document, Task
from taskcraft_core.workspace import Workspace


def regenerate(workspace: Workspace, task_id: str, reason: str | None = None, engine: Engine | None = None) -> Task:
    """A new candidate for a rejected atomic task, stored with `regenerated_from` (and the rejected
    task as its parent); pending when verified, failed_verification with the reason otherwise. The
    reason defaults to the reviewer's reason for the rejection."""
    rejected, document, chunk = _rejected_with_evidence(workspace, task_id)
    feedback = (reason or "").strip() or _rejection_reason(workspace, task_id)
    ctx = GenerationContext(workspace=workspace, engine=engine or make_engine(workspace.settings), usage=Usage(),
                            acceptance=AcceptanceRule.from_settings(workspace.settings))
    for source_chunk, conclusion in _candidate_facts(rejected, document, chunk, feedback, ctx):
        task = candidate_task(rejected.content_identifier, document, source_chunk, conclusion, ctx)
        if question_key(task.question) == question_key(rejected.question) or workspace.store.get_task(task.id):
            continue
        task = task.model_copy(update={"regenerated_from": rejected.id, "regeneration_reason": feedback,
                                       "parent_ids": [rejected.id]})
        workspace.store.add_tasks([task])
        index_tasks(workspace, [task])
        return task
    raise TaskCraftError(f"No new candidate could be made from the evidence of task {task_id}.",
                         "Every fact of its document is a stored task already; edit the task instead.")


def _rejected_with_evidence(workspace: Workspace, task_id: str) -> tuple[Task, Document, Chunk]:
    task = workspace.store.get_task(task_id)
    if task is None:
        raise TaskCraftError(f"No task with id {task_id}.", "Pick a rejected task from the review queue.")
    if task.status != "rejected":
        raise TaskCraftError(f"Task {task_id} is {task.status}, not rejected.", "Only a rejected task is regenerated.")
    if task.kind != "atomic" or not task.document_id or not task.chunk_id or task.span_start is None:
        raise TaskCraftError(f"Task {task_id} has no single evidence span to regenerate from ({task.kind}).",
                             "Regenerate the atomic tasks it was built from instead.")
    document, chunk = workspace.store.get_document(task.document_id), workspace.store.get_chunk(task.chunk_id)
    if document is None or chunk is None:
        raise TaskCraftError(f"The evidence of task {task_id} is no longer in the corpus.",
                             "Its document was deleted; ingest it again to regenerate.")
    return task, document, chunk


def _rejection_reason(workspace: Workspace, task_id: str) -> str:
    rejections = [review for review in workspace.store.reviews_for(task_id) if review.decision == "reject"]
    return rejections[-1].reason if rejections and rejections[-1].reason else "rejected by a reviewer"


def _candidate_facts(rejected: Task, document: Document, chunk: Chunk, feedback: str,
                     ctx: GenerationContext) -> Iterator[tuple[Chunk, Conclusion]]:
    """The rejected fact with the feedback first; then the other facts of its chunk, then of the
    document's other chunks, nearest first (extracted only when needed)."""
    answer = rejected.golden_answer if isinstance(rejected.golden_answer, str) else "; ".join(rejected.golden_answer)
    sentence = next((s for s in sentences(chunk.text, offset=chunk.start)
                     if s.start <= (rejected.span_start or 0) < s.end), None)
    if sentence is not None:
        yield chunk, Conclusion(answer=answer, relation=rejected.relation, evidence=sentence.text,
                                span_start=rejected.span_start, span_end=rejected.span_end,
                                evidence_start=sentence.start, rejected_question=rejected.question, feedback=feedback)
    others = sorted(ctx.workspace.store.get_chunks(document.id), key=lambda c: (abs(c.position - chunk.position),
                                                                                c.position))
    for other_chunk in others:
        usage = Usage()
        try:
            facts = ctx.engine.extract_conclusions(rejected.content_identifier, document, other_chunk, usage)
        finally:
            ctx.usage.merge(usage)
        for fact in facts:
            if (fact.span_start, fact.span_end) != (rejected.span_start, rejected.span_end):
                yield other_chunk, fact.model_copy(update={"rejected_question": rejected.question,
                                                           "feedback": feedback})
