"""Builds the engine a run asks for: the offline engine, or the LLM engine with chat models from
settings. It lives outside both engines so neither imports the other."""

from __future__ import annotations

from typing import Literal

from taskcraft_core.generate.llm.engine import LLMEngine
from taskcraft_core.generate.offline.engine import OfflineEngine
from taskcraft_core.generate.protocol import Engine
from taskcraft_core.models.chat import make_chat_model
from taskcraft_core.settings import Settings


def make_engine(settings: Settings, engine: Literal["offline", "openai"] | None = None, model: str | None = None,
                base_url: str | None = None) -> Engine:
    """The offline engine, or the LLM engine with chat models built from settings (a model or base
    URL given here overrides the settings for every role)."""
    chosen = engine or settings.active_engine
    if chosen == "offline":
        return OfflineEngine(max_conclusions=settings.max_candidates_per_chunk)
    if model:
        settings = settings.with_changes(model=model, generation_model=None, solver_model=None, judge_model=None)
    if base_url:
        settings = settings.with_changes(openai_base_url=base_url)
    return LLMEngine(
        make_chat_model(settings, "generation"), make_chat_model(settings, "solver"),
        make_chat_model(settings, "judge"),
        judge_votes=settings.judge_votes, max_conclusions=settings.max_candidates_per_chunk,
    )
