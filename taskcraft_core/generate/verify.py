"""Verification (METHOD §1.2): the model alone must fail, the agent with tools must succeed.

Both answers, both judge scores, the rationale, the agent's step count and its trajectory are
kept, whether the candidate passes or not; the acceptance rule lives on the context. Exploration
tasks (explore.py) are verified by the same `verify`, with their executor as the solver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskcraft_core.agent.loop import AgentResult, run_agent
from taskcraft_core.agent.tools import make_tools
from taskcraft_core.errors import ModelCallFailed, ModelOutputError
from taskcraft_core.generate.checks import with_checks
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.difficulty import difficulty
from taskcraft_core.generate.prompts import SOLVER_SYSTEM_PROMPT
from taskcraft_core.generate.protocol import Golden
from taskcraft_core.models.chat import Usage, raise_translated
from taskcraft_core.schema import Task, TrajectoryStep, Verification

# How a candidate's failure reason starts when a model call failed beyond its retries (ModelCallFailed).
CALL_FAILED = "model call failed"


@dataclass
class Outcome:
    """The verification of one question: the record to store, the trajectory, and the decision."""

    verification: Verification
    trajectory: list[TrajectoryStep]
    accepted: bool
    reason: str | None
    tool_steps: int


def solve_with_agent(question: str, ctx: GenerationContext, usage: Usage, hop: int = 0) -> AgentResult:
    """The agent with the corpus tools (and fetch_url when the settings allow it) on one question."""
    settings = ctx.workspace.settings
    tools = make_tools(ctx.workspace, allow_fetch=settings.solver_can_fetch_urls)
    model = ctx.engine.solver_model()
    try:
        result = run_agent(question, model, tools, max_steps=settings.agent_max_steps,
                           tool_timeout_s=settings.tool_timeout_s, system_prompt=SOLVER_SYSTEM_PROMPT, hop=hop)
    except Exception as error:
        # The agent loop lets endpoint failures through; here they become the studio's errors, so a
        # failed call fails this candidate (ModelCallFailed) or the unit (ModelUnavailableError).
        raise_translated(model, error)
    usage.add(calls=result.calls, tokens=result.tokens)
    return result


# The attempt after the model alone: question -> the solving agent's result, its calls counted.
Solve = Callable[[str, GenerationContext, Usage], AgentResult]
# Why a judged attempt is rejected, or None to accept it: (verification, result, accepted by the rule).
Rejection = Callable[[Verification, AgentResult, bool], str | None]


def verify(question: str, golden: Golden, ctx: GenerationContext, usage: Usage, hop: int = 0, *,
           solve: Solve | None = None, solver_name: str = "agent", rejection: Rejection | None = None) -> Outcome:
    """Model alone, then (unless that already decided it) the solver; each answer judged against the
    golden answer. The solver is the corpus agent (`solve_with_agent`) unless `solve` is given, and
    `rejection` may add checks on its trajectory (exploration's executor must visit its route).
    Model errors propagate: the caller marks the candidate failed. Calls are counted by step
    (model_alone, judge_alone, the solver's name, judge_<solver>)."""
    engine = ctx.engine
    alone = engine.answer_alone(question, usage.at("model_alone"))
    alone_judgement = engine.judge(question, golden, alone, usage.at("judge_alone"))
    check = Verification(model_alone_answer=alone, model_alone_score=alone_judgement.score,
                         judge_rationale=f"model alone: {alone_judgement.rationale}")
    if not ctx.acceptance.agent_can_still_pass(alone_judgement.score):
        # Cheap rejection: no solver score could beat this, so neither the solver nor its judge runs.
        return Outcome(check, [], accepted=False, tool_steps=0,
                       reason=f"model alone answered it (score {alone_judgement.score}); {solver_name} not run")
    solver_usage = usage.at(solver_name)
    result = solve(question, ctx, solver_usage) if solve else solve_with_agent(question, ctx, solver_usage, hop)
    if result.finished:
        judgement = engine.judge(question, golden, result.answer, usage.at(f"judge_{solver_name}"))
        score, rationale = judgement.score, judgement.rationale
    else:
        score, rationale = 0, result.failure or f"{solver_name} failed"
    check = check.model_copy(update={
        "agent_answer": result.answer, "agent_score": score, "agent_steps": result.tool_steps,
        "judge_rationale": f"{check.judge_rationale}; {solver_name}: {rationale}",
    })
    reason = (rejection or agent_rejection)(check, result, ctx.acceptance.accepts(score, alone_judgement.score))
    return Outcome(check, result.steps, reason is None, reason, result.tool_steps)


def agent_rejection(check: Verification, result: AgentResult, accepted: bool) -> str | None:
    """The corpus agent's verdict: None when the acceptance rule accepts its judged answer."""
    if accepted:
        return None
    if check.model_alone_score > 0:
        return f"model alone answered it (score {check.model_alone_score}); the agent scored {check.agent_score}"
    if not result.finished:
        return f"agent failed: {result.failure}"
    return f"agent failed (score {check.agent_score})"


def output_failure(what: str, error: ModelOutputError) -> str:
    """A candidate's failure reason when a step got no usable answer: a failed call says so (the
    candidate is not to blame), a malformed answer names the step whose output it was."""
    if isinstance(error, ModelCallFailed):
        return f"{CALL_FAILED}: {error.message}"
    return f"{what}: {error.message}"


def failed_on_call(task: Task) -> bool:
    """Whether a candidate failed because a model call failed (not on its merits)."""
    return task.status == "failed_verification" and (task.failure_reason or "").startswith(f"{CALL_FAILED}: ")


def question_key(question: str) -> str:
    """The question as it enters a content id: lower case, single spaces."""
    return " ".join(question.lower().split())


def verified_task(fields: dict[str, Any], outcome: Outcome, usage: Usage, *, hops: int = 1, width: int = 1) -> Task:
    """A task from a verified candidate: pending when accepted, failed_verification with the reason
    otherwise; difficulty from the agent's tool steps and the model-alone score."""
    level, inputs = difficulty(hops, width, outcome.tool_steps, outcome.verification.model_alone_score)
    return with_checks(Task(**fields, hops=hops, width=width, difficulty=level, difficulty_inputs=inputs,
                            status="pending" if outcome.accepted else "failed_verification",
                            failure_reason=outcome.reason, trajectory=outcome.trajectory,
                            verification=outcome.verification, model_calls=usage.calls, tokens=usage.tokens))


def failed_task(fields: dict[str, Any], reason: str, usage: Usage, *, hops: int = 1, width: int = 1) -> Task:
    """A candidate that failed before or during verification, kept for the funnel with its reason."""
    return with_checks(Task(**fields, hops=hops, width=width, status="failed_verification", failure_reason=reason,
                            model_calls=usage.calls, tokens=usage.tokens))
