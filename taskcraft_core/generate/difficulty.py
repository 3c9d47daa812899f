"""Difficulty (METHOD §1.5): an explicit formula, stored on the task together with its inputs.

    level = hops + (width - 1) + extra_steps - known, clamped to 1..4 (4 means "4 or more")

where extra_steps is 1 when the agent needed more than two tool calls per sub-question
(sub-questions = hops + width - 1; two calls is one search plus one read), and known is 1 when
the model alone already gave part of the answer (model-alone score 1).
"""

from __future__ import annotations

from typing import Any

FORMULA = "clamp(hops + (width - 1) + [tool_steps > 2 * (hops + width - 1)] - [model_alone_score >= 1], 1, 4)"
MAX_LEVEL = 4


def difficulty(hops: int, width: int, tool_steps: int, model_alone_score: int) -> tuple[int, dict[str, Any]]:
    """The level (1..4, 4 meaning 4+) and the inputs it was computed from."""
    sub_questions = hops + width - 1
    extra_steps = 1 if tool_steps > 2 * sub_questions else 0
    known = 1 if model_alone_score >= 1 else 0
    level = max(1, min(MAX_LEVEL, sub_questions + extra_steps - known))
    inputs = {"hops": hops, "width": width, "tool_steps": tool_steps, "model_alone_score": model_alone_score,
              "formula": FORMULA}
    return level, inputs
