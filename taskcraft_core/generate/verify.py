"""Verification (METHOD §1.2): the model alone must fail, the agent with tools must succeed.

Both answers, both judge scores, the rationale, the agent's step count and its trajectory are
kept, whether the candidate passes or not; the acceptance rule lives on the context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskcraft_core.agent import AgentResult, run_agent
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.difficulty import difficulty
from taskcraft_core.generate.engine import Golden
from taskcraft_core.llm import Usage
from taskcraft_core.schema import Task, TrajectoryStep, Verification
from taskcraft_core.tools import make_tools


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
    result = run_agent(question, ctx.engine.solver_model(), tools, max_steps=settings.agent_max_steps,
                       tool_timeout_s=settings.tool_timeout_s, hop=hop)
    usage.add(calls=result.calls, tokens=result.tokens)
    return result


def verify(question: str, golden: Golden, ctx: GenerationContext, usage: Usage, hop: int = 0) -> Outcome:
    """Model alone, then (unless that already decided it) the agent; each answer judged against the
    golden answer. Model errors propagate: the caller marks the candidate failed."""
    engine = ctx.engine
    alone = engine.answer_alone(question, usage)
    alone_judgement = engine.judge(question, golden, alone, usage)
    check = Verification(model_alone_answer=alone, model_alone_score=alone_judgement.score,
                         judge_rationale=f"model alone: {alone_judgement.rationale}")
    if not ctx.acceptance.agent_can_still_pass(alone_judgement.score):
        # Cheap rejection: no agent score could beat this, so neither the agent nor its judge runs.
        reason = f"model alone answered it (score {alone_judgement.score}); agent not run"
        return Outcome(check, [], accepted=False, reason=reason, tool_steps=0)
    result = solve_with_agent(question, ctx, usage, hop)
    if result.finished:
        agent_judgement = engine.judge(question, golden, result.answer, usage)
        agent_score, agent_rationale = agent_judgement.score, agent_judgement.rationale
    else:
        agent_score, agent_rationale = 0, result.failure or "agent failed"
    check = check.model_copy(update={
        "agent_answer": result.answer, "agent_score": agent_score, "agent_steps": result.tool_steps,
        "judge_rationale": f"{check.judge_rationale}; agent: {agent_rationale}",
    })
    accepted = ctx.acceptance.accepts(agent_score, alone_judgement.score)
    return Outcome(check, result.steps, accepted, None if accepted else _rejection(check, result), result.tool_steps)


def _rejection(check: Verification, result: AgentResult) -> str:
    if check.agent_score <= check.model_alone_score and check.model_alone_score > 0:
        return f"model alone answered it (score {check.model_alone_score}) as well as the agent ({check.agent_score})"
    if not result.finished:
        return f"agent failed: {result.failure}"
    return f"agent failed (score {check.agent_score})"


def question_key(question: str) -> str:
    """The question as it enters a content id: lower case, single spaces."""
    return " ".join(question.lower().split())


def verified_task(fields: dict[str, Any], outcome: Outcome, usage: Usage, *, hops: int = 1, width: int = 1) -> Task:
    """A task from a verified candidate: pending when accepted, failed_verification with the reason
    otherwise; difficulty from the agent's tool steps and the model-alone score."""
    level, inputs = difficulty(hops, width, outcome.tool_steps, outcome.verification.model_alone_score)
    return Task(**fields, hops=hops, width=width, difficulty=level, difficulty_inputs=inputs,
                status="pending" if outcome.accepted else "failed_verification", failure_reason=outcome.reason,
                trajectory=outcome.trajectory, verification=outcome.verification,
                model_calls=usage.calls, tokens=usage.tokens)


def failed_task(fields: dict[str, Any], reason: str, usage: Usage, *, hops: int = 1, width: int = 1) -> Task:
    """A candidate that failed before or during verification, kept for the funnel with its reason."""
    return Task(**fields, hops=hops, width=width, status="failed_verification", failure_reason=reason,
                model_calls=usage.calls, tokens=usage.tokens)
