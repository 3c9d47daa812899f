"""The Generate page's block for live-website exploration: the form that starts one, and the stepper
over a run's exploration trajectory (screenshot, URL, action, what the explorer learned)."""

from __future__ import annotations

import json

import streamlit as st

from app_pages._common import escape_markdown, may, user_errors, workspace
from taskcraft_core.curate.exploration import exploration_jsonl
from taskcraft_core.runs import service as runs
from taskcraft_core.runs import site_exploration as site
from taskcraft_core.schema import ExplorationStep, GenerationRun
from taskcraft_core.workspace import Workspace

ACTIVE_EXPLORATION = "explore_active_run"


def explore_form(ws: Workspace) -> site.ExploreRequest | None:
    """Start URL and budgets of a website exploration; the request when submitted."""
    settings = ws.settings
    with st.form("explore_form"):
        start_url = st.text_input("Start URL", key="explore_start_url", placeholder="https://docs.example.com/",
                                  help="The explorer opens this page in a headless browser and explores from it.")
        left, right = st.columns(2)
        max_pages = left.number_input("Most pages", 1, 1_000, settings.explore_max_pages, key="explore_max_pages")
        max_minutes = right.number_input("Most minutes", 1, 120, max(1, round(settings.explore_max_seconds / 60)),
                                         key="explore_max_minutes")
        engine = left.selectbox("Engine", ("offline", "openai"), index=("offline", "openai").index(
            settings.active_engine), key="explore_engine")
        same_site = right.checkbox("Stay on the start URL's site", value=True, key="explore_same_site")
        allow_private = may("private_urls") and right.checkbox(
            "Allow private addresses (localhost, LAN)", key="explore_allow_private",
            help="Only for sites on your own network; admins only.")
        if not st.form_submit_button("Explore", type="primary"):
            return None
    return site.ExploreRequest(start_url=start_url.strip(), max_pages=int(max_pages), max_seconds=60.0 * max_minutes,
                               same_site=same_site, allow_private_urls=allow_private or None, engine=engine)


@st.fragment(run_every=1)
def live_exploration(run_id: str) -> None:
    """Polls the run each second: steps and pages so far, with a cancel button; a finished run
    reruns the page once (its summary then shows)."""
    ws = workspace()
    run = ws.store.get_run(run_id)
    if run is None or run.status != "running":
        st.session_state.pop(ACTIVE_EXPLORATION, None)
        st.rerun()
    steps = ws.store.exploration_steps(run_id, screenshots=False)
    pages = len({step.document_id for step in steps if step.document_id})
    latest = steps[-1].url if steps else "starting the browser"
    budget = site.ExploreRequest(**run.config.settings[site.EXPLORE_KEY]).max_pages or ws.settings.explore_max_pages
    st.progress(min(1.0, pages / budget),
                text=f"Exploring · {len(steps)} steps · {pages} pages · {latest}")
    if st.button("Cancel exploration", key="explore_cancel"):
        with user_errors():
            runs.cancel_run(ws, run_id)


def show_explore(ws: Workspace) -> None:
    """The form, the live progress of a running exploration, and the summary of the last one."""
    st.subheader("Explore a website")
    st.caption("A headless browser explores a live site (links, search boxes, filters), then writes goal-style "
               "tasks per guideline family and verifies each by doing it in the browser.")
    request = explore_form(ws)
    if request is not None:
        with user_errors():
            st.session_state[ACTIVE_EXPLORATION] = site.start_exploration_in_background(ws, request)
    if st.session_state.get(ACTIVE_EXPLORATION):
        live_exploration(st.session_state[ACTIVE_EXPLORATION])


def show_trajectory(ws: Workspace, runs: list[GenerationRun]) -> None:
    """A stepper over one explored run: one step at a time, its screenshot read only when shown."""
    explored = [run.id for run in runs if site.is_exploration(run)]
    if not explored:
        return
    st.subheader("Exploration trajectories")
    run_id = st.selectbox("Run", explored, key="explore_trajectory_run")
    show_summary(ws, run_id)
    steps = ws.store.exploration_steps(run_id, screenshots=False)
    if not steps:
        return
    st.download_button("Download the trajectory (JSONL, screenshots inline)", key="explore_download",
                       data=lambda: exploration_jsonl(ws.store, run_id), file_name=f"exploration-{run_id}.jsonl",
                       mime="application/jsonl")
    by_position = {step.position: step for step in steps}
    position = st.select_slider("Step", options=list(by_position), key=f"explore_step_{run_id}",
                                format_func=lambda p: f"{p + 1} · {by_position[p].action}") if len(steps) > 1 else 0
    show_step(ws, by_position.get(position, steps[0]), len(steps))


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


def show_summary(ws: Workspace, run_id: str) -> None:
    """What the exploration found and made, per guideline family, and its trajectory as a download."""
    summary = site.exploration_summary(ws, run_id)
    st.caption(f"{summary.status} · {summary.engine} engine · {summary.start_url} · {summary.pages_visited} pages · "
               f"{summary.interactions} interactions · {summary.accepted}/{summary.candidates} tasks verified"
               + (f" · stopped: {summary.stopped}" if summary.stopped else ""))
    if summary.by_family:
        st.dataframe([{"family": family, **counts} for family, counts in summary.by_family.items()], hide_index=True)
    for problem in summary.problems:
        st.warning(escape_markdown(problem))
