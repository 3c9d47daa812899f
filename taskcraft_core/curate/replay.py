"""Replay: re-run the solving agent on stored tasks against the current corpus (and the live web
when the solver may fetch), judge its answer against the golden answer, and flag the tasks whose
answer no longer holds as stale. The new trajectory is kept beside the task's own (a `Replay`
row); the task itself is not rewritten. This keeps an evaluation set valid as its documents change.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from taskcraft_core.errors import ModelOutputError, TaskCraftError
from taskcraft_core.generate.context import AcceptanceRule, GenerationContext
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.protocol import Engine
from taskcraft_core.generate.verify import solve_with_agent
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Replay, Task
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

BATCH = 50


class ReplaySummary(BaseModel):
    """How many tasks were replayed, how many still hold, and which changed (now stale)."""

    replayed: int = 0
    still_holds: int = 0
    changed: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list, description="Tasks that could not be replayed, with why.")


def replay_tasks(workspace: Workspace, task_ids: Sequence[str] = (), statuses: Sequence[str] = ("accepted",),
                 engine: Engine | None = None) -> ReplaySummary:
    """Replay the given tasks (all must exist), or every task with one of the statuses."""
    ids = list(dict.fromkeys(task_ids)) or workspace.store.list_task_ids(TaskFilter(statuses=list(statuses)))
    missing = set(ids) - {task.id for task in workspace.store.get_tasks(ids, with_trajectory=False)}
    if missing:
        raise TaskCraftError(f"No task with id {', '.join(sorted(missing))}.", "Nothing was replayed; check the ids.")
    ctx = GenerationContext(workspace=workspace, engine=engine or make_engine(workspace.settings), usage=Usage(),
                            acceptance=AcceptanceRule.from_settings(workspace.settings))
    summary = ReplaySummary()
    for start in range(0, len(ids), BATCH):
        replays = []
        for task in workspace.store.get_tasks(ids[start : start + BATCH], with_trajectory=False):
            try:
                replays.append(replay_one(task, ctx))
            except (ModelOutputError, TaskCraftError) as error:
                summary.errors.append(f"{task.id}: {error}")
        workspace.store.add_replays(replays)  # each batch is kept even if a later one fails
        summary.replayed += len(replays)
        summary.still_holds += sum(replay.holds for replay in replays)
        summary.changed.extend(replay.task_id for replay in replays if not replay.holds)
    return summary


def replay_one(task: Task, ctx: GenerationContext) -> Replay:
    """The solving agent on the task's question now, judged against its golden answer. It holds
    when the acceptance rule would accept that answer (the model-alone side is not re-run)."""
    usage = Usage()
    result = solve_with_agent(task.question, ctx, usage)
    if result.finished:
        judgement = ctx.engine.judge(task.question, task.golden_answer, result.answer, usage)
        score, rationale = judgement.score, judgement.rationale
    else:
        score, rationale = 0, result.failure or "agent failed"
    ctx.usage.merge(usage)
    return Replay(task_id=task.id, answer=result.answer, score=score, holds=ctx.acceptance.accepts(score, 0),
                  judge_rationale=rationale, tool_steps=result.tool_steps, trajectory=result.steps,
                  engine=ctx.engine.name, model=ctx.engine.model)
