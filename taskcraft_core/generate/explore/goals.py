"""Goal-style tasks from a website exploration (METHOD §2, after AutoPlay's task writer, executor and
verifier).

For each guideline family the engine writes candidates from what the explorer saw. Each is grounded
first: its pages were reached by the explorer and each answer is written in the text the explorer
read there (the page is stored as a document of the run; the task points at it and, where the
extracted text holds it, at the answer's span). Then the executor, the agent with the browser tools
starting at the start URL, carries it out through the real agent loop (its trajectory becomes the
task's), and the trajectory-level verifier of `verify` judges it: the model alone must fail, the
executor's answer must match the golden answer, its trajectory must show every required page, and
the site's search must have been used (or left alone) when the task says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urldefrag

from taskcraft_core.agent.browser import BrowserSession, make_browser_tools, observed_url
from taskcraft_core.agent.loop import AgentResult, run_agent
from taskcraft_core.errors import EnvironmentFailure, ModelOutputError, ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.context import GenerationCancelled, GenerationContext, check_cancelled
from taskcraft_core.generate.explore.records import CandidateAnswer, GoalCandidate, ObservedPage, SiteExploration
from taskcraft_core.generate.explore.tasks import seen_span, written_candidates
from taskcraft_core.generate.prompts import EXPLORE_SITE_SOLVER_SYSTEM
from taskcraft_core.generate.text import contains_answer
from taskcraft_core.generate.verify import Outcome, failed_task, output_failure, question_key, verified_task, verify
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import GUIDELINE_FAMILIES, Task, TrajectoryStep, Verification, content_id, guideline_name

EXECUTOR_MIN_STEPS = 12  # a composed task reads, searches, opens and reads twice
RUN_BUDGET_SPENT = "run page budget spent"


def generate_goal_tasks(exploration: SiteExploration, ctx: GenerationContext, session: BrowserSession, *,
                        guidelines: Sequence[str] = GUIDELINE_FAMILIES, per_guideline: int = 5,
                        into: list[Task] | None = None, max_run_pages: int | None = None) -> list[Task]:
    """Every candidate the engine writes for each guideline, as a Task: grounded, executed in the
    session's browser and verified (status pending), or failed_verification with the reason (one whose
    execution fails, say its start page does not load, too). A guideline whose writer output is
    malformed gives none (the problem is noted on the exploration). Each task is appended to `into`
    (a list the caller owns) as it is made, so a failure midway keeps the tasks made before it; a
    cancel keeps them too (and sets the exploration's `stopped`). Once the run's page loads reach
    `max_run_pages`, the candidates not executed yet fail with RUN_BUDGET_SPENT (noted in problems)."""
    families = [guideline_name(g) for g in guidelines]
    unknown = [g for g in families if g not in GUIDELINE_FAMILIES]
    if unknown or not families:
        raise TaskCraftError(f"Unknown guideline families: {', '.join(unknown) or '(none given)'}.",
                             hint=f"Choose among {', '.join(GUIDELINE_FAMILIES)}.")
    tasks = [] if into is None else into
    try:
        _write_and_verify(exploration, ctx, session, families, per_guideline, tasks, max_run_pages)
    except GenerationCancelled:
        exploration.stopped = "cancelled"
    if unexecuted := sum(task.failure_reason == RUN_BUDGET_SPENT for task in tasks):
        exploration.problems.append(f"{RUN_BUDGET_SPENT}: {exploration.page_loads} page loads reached the run's "
                                    f"cap of {max_run_pages}; {unexecuted} candidate(s) not executed")
    return tasks


def _write_and_verify(exploration: SiteExploration, ctx: GenerationContext, session: BrowserSession,
                      families: Sequence[str], per_guideline: int, tasks: list[Task],
                      max_run_pages: int | None) -> None:
    def write(guideline: str, usage: Usage) -> list[GoalCandidate]:
        return ctx.engine.write_goal_tasks(exploration, guideline, per_guideline, usage)

    for _guideline, candidates in written_candidates(families, write, ctx, exploration.problems):
        for candidate in candidates[:per_guideline]:
            check_cancelled(ctx)
            task = goal_task(candidate, exploration, ctx, session, max_run_pages)
            if all(made.id != task.id for made in tasks):
                tasks.append(task)


def goal_task(candidate: GoalCandidate, exploration: SiteExploration, ctx: GenerationContext,
              session: BrowserSession, max_run_pages: int | None = None) -> Task:
    """One candidate through grounding, execution and verification (no execution once the run's page
    loads reach `max_run_pages`); its calls counted on it."""
    usage = Usage()
    try:
        return _goal_task(candidate, exploration, ctx, session, usage, max_run_pages)
    finally:
        ctx.usage.merge(usage)


def _goal_task(candidate: GoalCandidate, exploration: SiteExploration, ctx: GenerationContext,
               session: BrowserSession, usage: Usage, max_run_pages: int | None) -> Task:
    fields = _fields(candidate, exploration, ctx)
    size = {"hops": max(1, len(candidate.pages)), "width": max(1, len(candidate.answers))}
    problem = candidate.problem or pages_problem(candidate, exploration)
    if problem is None:
        grounded, problem = ground(candidate, exploration, ctx)
        fields.update(grounded)
    if problem is None and any(contains_answer(a.answer, candidate.question) for a in candidate.answers):
        problem = "the question reveals its answer"
    if problem is None and max_run_pages is not None and exploration.page_loads >= max_run_pages:
        problem = RUN_BUDGET_SPENT
    if problem is not None:
        return failed_task(fields, problem, usage, **size)
    try:
        outcome = verify_goal(candidate, fields["golden_answer"], exploration, ctx, session, usage)
    except ModelOutputError as malformed:
        return failed_task(fields, output_failure("verification failed on malformed model output", malformed), usage,
                           **size)
    except (GenerationCancelled, ModelUnavailableError, EnvironmentFailure):
        raise  # the run's fault, not the candidate's
    except TaskCraftError as error:
        return failed_task(fields, f"execution failed: {error.message}", usage, **size)
    return verified_task(fields, outcome, usage, **size)


def same_page(url: str) -> str:
    return urldefrag(url.strip()).url


def pages_problem(candidate: GoalCandidate, exploration: SiteExploration) -> str | None:
    """Why the task asks for pages the explorer never reached (None when it reached them all)."""
    if not candidate.question.strip() or not candidate.answers:
        return "the writer left out the question or the answers"
    for url in [*candidate.pages, *(a.url for a in candidate.answers)]:
        if exploration.memory.page_at(same_page(url)) is None:
            return f"the page {url} was not reached by the exploration"
    return None


def ground(candidate: GoalCandidate, exploration: SiteExploration,
           ctx: GenerationContext) -> tuple[dict[str, Any], str | None]:
    """Where each answer is written in the text the explorer read, and the source the task points
    at: the stored document of the last answer's page (with the answer's span when its extracted
    text holds it)."""
    located: dict[str, Any] = {}
    for answer in candidate.answers:
        page = exploration.memory.page_at(same_page(answer.url))
        text = exploration.texts.get(page.document_id, "") if page else ""
        written = CandidateAnswer(answer=answer.answer, document_id=page.document_id if page else "",
                                  evidence=answer.evidence)
        if page is None or seen_span(written, ObservedPage(document_id=page.document_id, title="", start=0,
                                                           text=text)) is None:
            return {}, f"the answer “{answer.answer}” was not seen on {answer.url}"
        document = ctx.workspace.store.get_document(page.document_id)
        span = seen_span(written, ObservedPage(document_id=page.document_id, title="", start=0,
                                               text=document.text)) if document else None
        located = {"document_id": page.document_id, "span_start": span[0] if span else None,
                   "span_end": span[1] if span else None,
                   "chunk_id": _chunk_id(ctx, page.document_id, span) if span else None}
    return located, None


def _chunk_id(ctx: GenerationContext, document_id: str, span: tuple[int, int]) -> str | None:
    chunk = next((c for c in ctx.workspace.store.get_chunks(document_id) if c.start <= span[0] and span[1] <= c.end),
                 None)
    return chunk.id if chunk else None


def _fields(candidate: GoalCandidate, exploration: SiteExploration, ctx: GenerationContext) -> dict[str, Any]:
    answers = [a.answer for a in candidate.answers]
    return {
        "id": content_id("explore-site", candidate.guideline, question_key(candidate.question), *candidate.pages,
                         *answers),
        "kind": "explore", "question": candidate.question,
        "golden_answer": answers[0] if len(answers) == 1 else answers,
        "content_identifier": exploration.start_url, "relation": candidate.guideline, "guideline": candidate.guideline,
        "engine": ctx.engine.name, "model": ctx.engine.model, "run_id": ctx.run_id,
    }


# ---- executing and verifying --------------------------------------------------------------------


def execute(question: str, start_url: str, ctx: GenerationContext, session: BrowserSession,
            usage: Usage) -> AgentResult:
    """The executor: the agent with the browser tools, from the start URL, through the real loop."""
    settings = ctx.workspace.settings
    session.restart_budget()
    session.open_url(start_url)
    result = run_agent(question, ctx.engine.site_executor_model(), make_browser_tools(session),
                       max_steps=max(settings.agent_max_steps, EXECUTOR_MIN_STEPS),
                       tool_timeout_s=max(settings.tool_timeout_s, 2 * session.limits.page_timeout_s),
                       system_prompt=f"{EXPLORE_SITE_SOLVER_SYSTEM} You are on the start page {start_url}.")
    usage.add(calls=result.calls, tokens=result.tokens)
    return result


def visited_urls(steps: Sequence[TrajectoryStep]) -> set[str]:
    """Pages a successful browser observation of the trajectory showed."""
    return {same_page(url) for step in steps if step.type == "tool" and step.observation
            and (url := observed_url(step.observation))}


def searched(steps: Sequence[TrajectoryStep]) -> bool:
    return any(step.type == "tool" and step.tool == "type_and_submit" and step.observation
               and observed_url(step.observation) for step in steps)


def trajectory_problem(candidate: GoalCandidate, result: AgentResult) -> str | None:
    """What the executor's trajectory lacks for this task (None: nothing)."""
    missing = [url for url in candidate.pages if same_page(url) not in visited_urls(result.steps)]
    if missing:
        return "executor did not reach " + ", ".join(missing)
    if candidate.search is True and not searched(result.steps):
        return "executor did not use the site's search"
    if candidate.search is False and searched(result.steps):
        return "executor used the site's search, which the task rules out"
    return None


def verify_goal(candidate: GoalCandidate, golden: str | list[str], exploration: SiteExploration,
                ctx: GenerationContext, session: BrowserSession, usage: Usage) -> Outcome:
    """`verify` with the browser executor as the solver (its page loads counted on the exploration)
    and the trajectory checks above."""

    def solve(question: str, context: GenerationContext, solver_usage: Usage) -> AgentResult:
        try:
            return execute(question, exploration.start_url, context, session, solver_usage)
        finally:
            exploration.page_loads += session.page_loads  # the executor's budget starts at 0 on each run

    def rejection(check: Verification, result: AgentResult, accepted: bool) -> str | None:
        if not result.finished:
            return f"executor failed: {result.failure}"
        if not accepted:
            if check.model_alone_score > 0:
                return f"model alone answered it (score {check.model_alone_score})"
            return f"executor's answer judged {check.agent_score}"
        return trajectory_problem(candidate, result)

    return verify(candidate.question, golden, ctx, usage, solve=solve, solver_name="executor", rejection=rejection)
