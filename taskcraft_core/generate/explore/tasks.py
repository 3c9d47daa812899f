"""Exploration-grounded tasks (METHOD §2, after AutoPlay) in a linked document collection.

`explore_corpus` (explorer.py) records what an explorer saw; `generate_explore_tasks` has the engine
write tasks from it per guideline family. Each candidate is grounded first (its pages were reached,
its links seen, its answers written in text the explorer observed), then executed by the tool-using
agent with the link tools and verified: the model alone must fail, the executor's answer must match
the golden answer, and the executor must have visited every page the route requires (the setting is
read-only, so that is all "changed nothing it was not asked to" asks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from taskcraft_core.agent.loop import AgentResult, run_agent
from taskcraft_core.agent.tools import make_link_tools, make_tools, page_observed
from taskcraft_core.errors import ModelCallFailed, ModelOutputError, ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.context import GenerationContext, check_cancelled
from taskcraft_core.generate.explore.records import (
    GUIDELINES,
    CandidateAnswer,
    Exploration,
    ExploreCandidate,
    ObservedPage,
    locate_in_page,
)
from taskcraft_core.generate.explore.walk import LISTED_PAGE, choose_start_page, explore_corpus
from taskcraft_core.generate.prompts import EXPLORE_SOLVER_SYSTEM
from taskcraft_core.generate.protocol import Golden
from taskcraft_core.generate.text import contains_answer, sentences
from taskcraft_core.generate.verify import Outcome, failed_task, output_failure, question_key, verified_task, verify
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Chunk, Task, TrajectoryStep, Verification, content_id, guideline_name

__all__ = ["GUIDELINES", "Exploration", "NoExploreTasksError", "choose_start_page", "explore_corpus",
           "generate_explore_tasks"]

Candidate = TypeVar("Candidate")
PAGE_TOOLS = ("read_document", "list_links", "follow_link")  # tools whose success shows a page was visited


class NoExploreTasksError(TaskCraftError):
    """No guideline gave a single task candidate (nothing explored, or unreadable writer output)."""


# ---- tasks --------------------------------------------------------------------------------------


def generate_explore_tasks(exploration: Exploration, ctx: GenerationContext, *, guidelines: Sequence[str] = GUIDELINES,
                           max_tasks_per_guideline: int = 5) -> list[Task]:
    """Every candidate the engine writes for each guideline, as a Task: grounded, executed and
    verified (status pending), or failed_verification with the reason. A guideline whose writer
    output is malformed gives no candidates; NoExploreTasksError when no guideline gave any, or
    ModelUnavailableError when none did and a writer's model call failed (the endpoint's fault)."""
    guidelines = [guideline_name(g) for g in guidelines]  # an old name ("retrieval") still asks for its family
    unknown = [g for g in guidelines if g not in GUIDELINES]
    if unknown or not guidelines:
        raise TaskCraftError(f"Unknown guideline families: {', '.join(unknown) or '(none given)'}.",
                             hint=f"Choose among {', '.join(GUIDELINES)}.")
    tasks: dict[str, Task] = {}
    problems: list[str] = []

    def write(guideline: str, usage: Usage) -> list[ExploreCandidate]:
        return ctx.engine.write_explore_tasks(exploration, guideline, max_tasks_per_guideline, usage)

    for guideline, candidates in written_candidates(guidelines, write, ctx, problems):
        if not candidates:
            problems.append(f"{guideline}: the exploration offers no such task")
        for candidate in candidates[:max_tasks_per_guideline]:
            check_cancelled(ctx)
            task = explore_task(candidate, exploration, ctx)
            tasks.setdefault(task.id, task)
    if not tasks:
        raise NoExploreTasksError("no explore task could be written: " + "; ".join(problems),
                                  hint="explore longer (more turns or steps) or from a page with more links")
    return list(tasks.values())


def written_candidates(guidelines: Sequence[str], write: Callable[[str, Usage], Sequence[Candidate]],
                       ctx: GenerationContext, problems: list[str]) -> Iterator[tuple[str, Sequence[Candidate]]]:
    """Each guideline's candidates from the task writer, its calls counted on the context. A writer
    output that is malformed gives none and is noted in `problems` (a call that failed beyond its
    retries named as such, issue 11); when no guideline gave a candidate and a call failed so, the
    endpoint is to blame: ModelUnavailableError once all are tried."""
    lost_call: ModelCallFailed | None = None
    written = False
    for guideline in guidelines:
        check_cancelled(ctx)
        usage = Usage()
        try:
            candidates = write(guideline, usage.at("explore_writer"))
        except ModelOutputError as malformed:
            lost_call = malformed if isinstance(malformed, ModelCallFailed) else lost_call
            problems.append(f"{guideline}: " + output_failure("the task writer's output was malformed", malformed))
            continue
        finally:
            ctx.usage.merge(usage)
        written = written or bool(candidates)
        yield guideline, candidates
    if not written and lost_call is not None:
        raise ModelUnavailableError(lost_call.message, hint=lost_call.hint) from lost_call


def explore_task(candidate: ExploreCandidate, exploration: Exploration, ctx: GenerationContext) -> Task:
    """One candidate through grounding, execution and verification; its calls counted on it."""
    usage = Usage()
    try:
        return _explore_task(candidate, exploration, ctx, usage)
    finally:
        ctx.usage.merge(usage)


def _explore_task(candidate: ExploreCandidate, exploration: Exploration, ctx: GenerationContext,
                  usage: Usage) -> Task:
    fields = _fields(candidate, exploration, ctx)
    size = {"hops": len(candidate.required_pages), "width": max(1, len(candidate.answers))}
    problem = candidate.problem or route_problem(candidate, exploration)
    spans: list[tuple[int, int]] = []
    if problem is None:
        spans, problem = ground_answers(candidate, exploration)
    if problem is None and any(contains_answer(a.answer, candidate.question) for a in candidate.answers):
        problem = "the question reveals its answer"
    if problem is not None:
        return failed_task(fields, problem, usage, **size)
    fields.update(_evidence(candidate, spans, ctx))
    titles = {page.document_id: page.title for page in exploration.memory.pages}
    try:
        outcome = verify_explore(candidate.question, fields["golden_answer"], candidate.required_pages, titles, ctx,
                                 usage)
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("verification failed on malformed model output", malformed), usage,
                           **size)
    return verified_task(fields, outcome, usage, **size)


def route_problem(candidate: ExploreCandidate, exploration: Exploration) -> str | None:
    """Why the route cannot be followed in what the explorer saw (None when it can): every page
    reached, every link seen on its page, each move starting from a page already on the route."""
    memory = exploration.memory
    if memory.page(candidate.start_id) is None:
        return f"the start page {candidate.start_id!r} was not reached by the exploration"
    on_route = {candidate.start_id}
    for move in candidate.moves:
        if memory.page(move.to_id) is None:
            return f"the page {move.to_id!r} was not reached by the exploration"
        if move.from_id not in on_route:
            return f"the route jumps to {move.from_id!r} without following a link to it"
        if not exploration.linked(move.from_id, move.to_id):
            return f"the explorer saw no link from {move.from_id!r} to {move.to_id!r}"
        on_route.add(move.to_id)
    return None


def ground_answers(candidate: ExploreCandidate, exploration: Exploration) -> tuple[list[tuple[int, int]], str | None]:
    """Where each answer is written in text the explorer observed on a page of the route."""
    spans = []
    for answer in candidate.answers:
        observed = exploration.observed_text(answer.document_id)
        if answer.document_id not in candidate.required_pages or observed is None:
            return [], f"the answer “{answer.answer}” is on a page the route does not reach"
        page = ObservedPage(document_id=answer.document_id, title="", start=observed[0], text=observed[1])
        span = seen_span(answer, page)
        if span is None:
            return [], f"the answer “{answer.answer}” was not seen on page {answer.document_id!r}"
        spans.append(span)
    return spans, None


def seen_span(answer: CandidateAnswer, page: ObservedPage) -> tuple[int, int] | None:
    """A given span inside the observed text that holds the answer, else the answer found in that
    text, else the evidence sentence when it holds the answer in another form (a date as 1962-03-14)."""
    end_of_page = page.start + len(page.text)
    if answer.span_start is not None and answer.span_end is not None:
        inside = page.start <= answer.span_start < answer.span_end <= end_of_page
        text = page.text[answer.span_start - page.start: answer.span_end - page.start] if inside else ""
        return (answer.span_start, answer.span_end) if inside and contains_answer(answer.answer, text) else None
    found = locate_in_page(answer.answer, answer.evidence, page)
    if found is not None:
        return found
    holding = [s for s in sentences(page.text, page.start) if contains_answer(answer.answer, s.text)]
    preferred = [s for s in holding if " ".join(answer.evidence.split()) in " ".join(s.text.split())]
    chosen = (preferred or holding)[:1]
    return (chosen[0].start, chosen[0].end) if chosen else None


def _evidence(candidate: ExploreCandidate, spans: list[tuple[int, int]], ctx: GenerationContext) -> dict[str, Any]:
    """The source of the answer on the final page of the route (the last answer when none is there)."""
    final_page = candidate.required_pages[-1]
    index = max((i for i, a in enumerate(candidate.answers) if a.document_id == final_page),
                default=len(candidate.answers) - 1)
    document_id, (start, end) = candidate.answers[index].document_id, spans[index]
    chunk = _chunk_at(ctx.workspace.store.get_chunks(document_id), start, end)
    return {"document_id": document_id, "chunk_id": chunk.id if chunk else None, "span_start": start, "span_end": end}


def _chunk_at(chunks: Sequence[Chunk], start: int, end: int) -> Chunk | None:
    return next((c for c in chunks if c.start <= start and end <= c.end), None)


def _fields(candidate: ExploreCandidate, exploration: Exploration, ctx: GenerationContext) -> dict[str, Any]:
    answers = [a.answer for a in candidate.answers]
    start = exploration.memory.page(candidate.start_id)
    return {
        "id": content_id("explore", candidate.guideline, question_key(candidate.question), *candidate.required_pages,
                         *answers),
        "kind": "explore", "question": candidate.question,
        "golden_answer": answers[0] if len(answers) == 1 else answers,
        "content_identifier": start.title if start else candidate.start_id, "relation": candidate.guideline,
        "guideline": candidate.guideline,
        "engine": ctx.engine.name, "model": ctx.engine.model,
        "document_id": candidate.required_pages[-1] or None, "run_id": ctx.run_id,
    }


# ---- executing and verifying --------------------------------------------------------------------


def execute(question: str, ctx: GenerationContext, usage: Usage) -> AgentResult:
    """The executor: the solving agent with the reading tools and the link tools."""
    settings = ctx.workspace.settings
    tools = [*make_tools(ctx.workspace, allow_fetch=settings.solver_can_fetch_urls), *make_link_tools(ctx.workspace)]
    result = run_agent(question, ctx.engine.executor_model(), tools, max_steps=settings.agent_max_steps,
                       tool_timeout_s=settings.tool_timeout_s, system_prompt=EXPLORE_SOLVER_SYSTEM)
    usage.add(calls=result.calls, tokens=result.tokens)
    return result


def visited_pages(steps: Sequence[TrajectoryStep]) -> set[str]:
    """Pages whose text or links a successful tool observation showed (a search hit is no visit)."""
    visited = set()
    for step in steps:
        if step.type != "tool" or step.tool not in PAGE_TOOLS or not step.observation:
            continue
        shown = page_observed(step.observation)
        if shown is not None:
            visited.add(shown[0])
        elif listed := LISTED_PAGE.match(step.observation):
            visited.add(listed["document_id"])
    return visited


def verify_explore(question: str, golden: Golden, required: Sequence[str], titles: dict[str, str],
                   ctx: GenerationContext, usage: Usage) -> Outcome:
    """`verify` with the executor as the solver: the model alone must fail, the executor's answer
    must be judged right, and its trajectory must show every required page. Model errors propagate."""

    def rejection(check: Verification, result: AgentResult, answered: bool) -> str | None:
        if not result.finished:
            return f"executor failed: {result.failure}"
        if not answered:
            return f"executor's answer judged {check.agent_score}"
        missing = [page for page in required if page not in visited_pages(result.steps)]
        if missing:
            return "executor did not visit the required page(s): " + ", ".join(f"“{titles.get(p, p)}”" for p in missing)
        return None

    return verify(question, golden, ctx, usage, solve=execute, solver_name="executor", rejection=rejection)
