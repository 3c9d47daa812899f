"""What every generation step is handed: the workspace, the engine, usage counters and the rule
that decides acceptance; and `make_engine`, which picks and builds the engine from settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.protocol import Engine
from taskcraft_core.models.chat import Usage
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace


@dataclass(frozen=True)
class AcceptanceRule:
    """When a verified candidate becomes a task (METHOD §1.7): the model alone must score at most
    `max_alone_score` (0 by default: any credit rejects, as the reference does), the agent's judged
    score must reach `min_agent_score` and, with `agent_must_beat_alone`, exceed the model-alone score."""

    min_agent_score: int = 1
    agent_must_beat_alone: bool = True
    max_alone_score: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> AcceptanceRule:
        return cls(settings.accept_min_agent_score, settings.accept_agent_must_beat_alone,
                   settings.accept_max_alone_score)

    def accepts(self, agent_score: int, alone_score: int) -> bool:
        beats = agent_score > alone_score or not self.agent_must_beat_alone
        return alone_score <= self.max_alone_score and agent_score >= self.min_agent_score and beats

    def agent_can_still_pass(self, alone_score: int) -> bool:
        """False when no agent score could pass: the agent run (and its judge) can be skipped."""
        return self.accepts(2, alone_score)


@dataclass
class GenerationContext:
    """Shared by the steps of one run; `usage` counts every model call and token of the run."""

    workspace: Workspace
    engine: Engine
    usage: Usage
    run_id: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    acceptance: AcceptanceRule = field(default_factory=AcceptanceRule)


class GenerationCancelled(TaskCraftError):
    """The run was cancelled while a unit of work was in progress; the unit is left undone."""


def check_cancelled(ctx: GenerationContext) -> None:
    if ctx.cancel.is_set():
        raise GenerationCancelled("generation cancelled", hint="resume the run to finish the remaining work")
