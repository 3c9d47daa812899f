"""Depth extension (METHOD §1.3): make the identifier itself something to find.

One hop: backward search (passages of other documents that mention the identifier or one of its
aliases, first those of documents linking to it; web results when configured) → a superset
and a relation that points to the identifier → merge (the identifier in the question is replaced
by the description) → checks, cheapest first: not a synonym, no leak of the identifier or the
answer, the relation points to exactly one thing, the merged question still asks the same, the
auxiliary question is solvable by the agent → the merged question is re-tested (model alone must
fail, agent must succeed). Up to `max_hops` hops, `hop_attempts` attempts each.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.tools import ToolException
from rapidfuzz import fuzz

from taskcraft_core.agent.tools import resolve_link, searxng_search
from taskcraft_core.errors import ModelCallFailed, ModelOutputError, ModelUnavailableError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.protocol import Superset
from taskcraft_core.generate.text import contains_answer, mention_pattern, normalise_answer
from taskcraft_core.generate.verify import Outcome, failed_task, output_failure, question_key, verified_task, verify
from taskcraft_core.index.vectors import Passage
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task, TrajectoryStep, content_id

SYNONYM_SIMILARITY = 90  # rapidfuzz ratio from which a superset counts as another name of the identifier
SEARCH_PER_ATTEMPT = 4
# One result of the web_search observation: "1. title - url" and its snippet on the next line.
WEB_RESULT = re.compile(r"^\d+\. (.*) - (\S+)\n   (.*)$", re.MULTILINE)

logger = logging.getLogger(__name__)


def extend_depth(task: Task, ctx: GenerationContext) -> list[Task]:
    """New depth tasks from one verified task, hop after hop: every attempt that reached a merged
    question is returned (failed ones with their reason); each hop builds on the previous hop's
    accepted task (parent_ids). Stops at the first hop without an accepted attempt. When nothing was
    made and a superset search lost its model call, the endpoint failed, not the task: ModelUnavailableError
    (the unit is left for a resume)."""
    settings = ctx.workspace.settings
    made: list[Task] = []
    lost_call: ModelCallFailed | None = None
    current, used_documents = task, {task.document_id}
    for hop in range(1, settings.max_hops + 1):
        accepted = None
        for passage in backward_search(current.content_identifier, used_documents, ctx)[: settings.hop_attempts]:
            check_cancelled(ctx)
            try:
                attempt = depth_attempt(current, passage, hop, ctx)
            except ModelCallFailed as failed:  # before any superset: no candidate to carry the failure
                lost_call = failed
                continue
            if attempt is not None:
                made.append(attempt)
                if attempt.status == "pending":
                    accepted, used_documents = attempt, used_documents | {passage.document_id}
                    break
        if accepted is None:
            break
        current = accepted
    if not made and lost_call is not None:
        raise ModelUnavailableError(lost_call.message, hint=lost_call.hint) from lost_call
    return made


def backward_search(identifier: str, used_documents: set[str | None], ctx: GenerationContext) -> list[Passage]:
    """Passages of other documents that mention the identifier, best first, one per document: first
    those of documents that link to the identifier's document (where a short alias such as "json"
    is enough, the link says which thing it is), then any passage naming the identifier or one of
    its longer aliases, then web search results when a web_search endpoint is configured. The text
    check is a cheap filter before any model sees a passage."""
    limit = ctx.workspace.settings.hop_attempts * SEARCH_PER_ATTEMPT
    names = subject_names(identifier, ctx)
    found: dict[str, Passage] = {}
    for document_id in linking_documents(identifier, ctx):
        if document_id not in used_documents:
            for passage in _searched(names, ctx, k=2, document_ids=[document_id]):
                if mentions(passage.text, names):
                    found.setdefault(passage.document_id, passage)
    distinctive = [name for name in names if name == identifier or len(name.split()) > 1]
    for passage in [*_searched(distinctive, ctx, k=limit), *web_passages(identifier, ctx)]:
        if passage.document_id in used_documents or passage.document_id in found:
            continue
        if normalise_answer(passage.title) != normalise_answer(identifier) and mentions(passage.text, distinctive):
            found[passage.document_id] = passage
    return list(found.values())[:limit]


def subject_names(identifier: str, ctx: GenerationContext) -> list[str]:
    """The identifier and the aliases of the document(s) it names."""
    wanted = normalise_answer(identifier)
    aliases = [alias for d in ctx.workspace.store.document_names() if normalise_answer(d.title) == wanted
               for alias in d.aliases]
    return list(dict.fromkeys([identifier, *aliases]))


def linking_documents(identifier: str, ctx: GenerationContext) -> list[str]:
    """Ids of the documents whose links lead to the document the identifier names (inbound links)."""
    stored = ctx.workspace.store.document_names()
    targets = {d.id for d in stored if normalise_answer(d.title) == normalise_answer(identifier)}
    if not targets:
        return []
    pages = ctx.workspace.store.list_documents()
    names = {posixpath.basename(p.source.rstrip("/")) for p in pages if p.id in targets}
    linking = []
    for source in ctx.workspace.store.document_links():
        candidates = [link for link in source.links if posixpath.basename(link.split("#")[0].rstrip("/")) in names]
        if source.id not in targets and any((page := resolve_link(source.source, link, pages)) is not None
                                            and page.id in targets for link in candidates):
            linking.append(source.id)
    return linking


def mentions(text: str, names: Sequence[str]) -> bool:
    return any(re.search(mention_pattern(name), text) for name in names)


def _searched(names: Sequence[str], ctx: GenerationContext, k: int,
              document_ids: Sequence[str] | None = None) -> list[Passage]:
    return [passage for name in names for passage in ctx.workspace.index.search_chunks(name, k=k,
                                                                                       document_ids=document_ids)]


def web_passages(identifier: str, ctx: GenerationContext) -> list[Passage]:
    """Results of the configured web search for the identifier, as passages (document id: the URL);
    none without an endpoint, or when it fails (backward search goes on with the corpus)."""
    search = searxng_search(ctx.workspace.settings)
    if search is None:
        return []
    try:
        results = search(identifier)
    except ToolException as failed:
        logger.warning("web search for backward search failed: %s", failed)
        return []
    return [Passage(chunk_id=url, document_id=url, title=title, text=snippet.strip(), start=0,
                    end=len(snippet.strip()), page=1, score=0.0)
            for title, url, snippet in WEB_RESULT.findall(results)]


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
        superset = engine.find_superset(identifier, passage, usage.at("superset"), subject_names(identifier, ctx)[1:])
    except ModelCallFailed:
        raise
    except ModelOutputError:
        return None  # nothing was proposed, so there is no candidate to record
    if superset is None:
        return None
    fields = _fields(current, superset, ctx)
    try:
        fields["question"] = engine.merge_depth(current.question, identifier, superset, usage.at("depth_merge"))
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("merge output was malformed", malformed), usage,
                           hops=current.hops + 1)
    fields["id"] = content_id("depth", question_key(fields["question"]), current.id)
    try:
        return _checked(current, superset, fields, hop, ctx, usage)
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("a check failed on malformed model output", malformed), usage,
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
    auxiliary = verify(superset.aux_question, superset.mention or identifier, ctx, usage.at("auxiliary"), hop=hop)
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
    for name in dict.fromkeys([identifier, superset.mention or identifier]):
        if contains_answer(name, merged):
            return f"the merged question still names the identifier “{name}”"
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
