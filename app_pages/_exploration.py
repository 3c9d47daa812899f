"""The Generate page's block for live-website exploration: the form that starts one, and the stepper
over a run's exploration trajectory (screenshot, URL, action, what the explorer learned)."""

from __future__ import annotations

import json

import streamlit as st

from app_pages._common import escape_markdown
from taskcraft_core.schema import ExplorationStep, GenerationRun
from taskcraft_core.workspace import Workspace


def show_trajectory(ws: Workspace, runs: list[GenerationRun]) -> None:
    """A stepper over one explored run: one step at a time, its screenshot read only when shown."""
    explored = [run.id for run in runs if ws.store.exploration_step_count(run.id)]
    if not explored:
        return
    st.subheader("Exploration trajectories")
    run_id = st.selectbox("Run", explored, key="explore_trajectory_run")
    steps = ws.store.exploration_steps(run_id, screenshots=False)
    position = st.select_slider("Step", options=[step.position for step in steps], key=f"explore_step_{run_id}",
                                format_func=lambda p: f"{p + 1} · {steps[p].action}") if len(steps) > 1 else 0
    step = next(step for step in steps if step.position == position)
    show_step(ws, step, len(steps))


def show_step(ws: Workspace, step: ExplorationStep, total: int) -> None:
    left, right = st.columns([3, 2])
    screenshot = ws.store.exploration_screenshot(step.run_id, step.position)
    if screenshot:
        left.image(screenshot, caption=step.url)
    else:
        left.caption(f"No screenshot · {step.url}")
    right.markdown(f"**Step {step.position + 1} of {total}** · turn {step.turn} · `{step.action}`")
    right.caption(escape_markdown(step.title or step.url))
    if step.args:
        right.code(json.dumps(step.args, ensure_ascii=False), language="json", wrap_lines=True)
    if step.error:
        right.error(escape_markdown(step.error))
    if step.learned:
        right.markdown(f"**Learned:** {escape_markdown(step.learned)}")
    if step.observation:
        with right.expander("What the page showed"):
            st.code(step.observation, language=None, wrap_lines=True)
