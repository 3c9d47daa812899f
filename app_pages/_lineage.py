"""The Review card's block for regeneration and replay: regenerate a rejected task with its reason,
the rejected/regenerated pair side by side, and the replays of the task with their verdicts."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_pages._common import escape_markdown, workspace
from taskcraft_core.curate import review_queue as rq
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import Task

LINEAGE_NOTICE = "review_lineage_notice"


def _run(action: Callable[[], str]) -> None:
    """A callback: run the action and keep what it says (or its error) for the next render."""
    try:
        st.session_state[LINEAGE_NOTICE] = ("success", action())
    except TaskCraftError as error:
        st.session_state[LINEAGE_NOTICE] = ("error", f"{error.message} {error.hint}".strip())


def _regenerate(task_id: str, reason_key: str) -> None:
    reason = st.session_state.get(reason_key, "")

    def action() -> str:
        # The engine, the agent and the models load only when asked, never on the card's first paint.
        from taskcraft_core.generate.regenerate import regenerate

        new = regenerate(workspace(), task_id, reason or None)
        why = f" ({new.failure_reason})" if new.failure_reason else ""
        return f"Regenerated as {new.id}: {new.status}{why}."
    _run(action)


def _replay(task_id: str) -> None:
    def action() -> str:
        from taskcraft_core.curate.replay import replay_tasks

        summary = replay_tasks(workspace(), [task_id])
        return "Replayed: the answer still holds." if summary.still_holds else "Replayed: the answer changed (stale)."
    _run(action)


def _pair(left_label: str, left: Task, right_label: str, right: Task, open_task: Callable[[str], None]) -> None:
    for column, label, task in zip(st.columns(2), (left_label, right_label), (left, right), strict=True):
        with column.container(border=True):
            st.caption(f"{label} · {escape_markdown(task.id)} · **{task.status}**")
            st.markdown(escape_markdown(task.question) + "  \n**A** "
                        + escape_markdown(rq.answer_as_text(task.golden_answer)))
            st.button("Open", key=f"lineage_open_{label}_{task.id}", on_click=open_task, args=(task.id,))


def show_regeneration_and_replay(task: Task, reviewer: str, open_task: Callable[[str], None]) -> None:
    """Render the block for one task; `open_task` shows another task on the card."""
    ws = workspace()
    if notice := st.session_state.pop(LINEAGE_NOTICE, None):
        (st.success if notice[0] == "success" else st.error)(escape_markdown(notice[1]))
    parent = ws.store.get_task(task.regenerated_from) if task.regenerated_from else None
    if parent is not None:
        st.markdown("**Regenerated from a rejection** · reason: " + escape_markdown(task.regeneration_reason or "—"))
        _pair("rejected", parent, "regenerated", task, open_task)
    for child in ws.store.get_tasks(ws.store.regenerations_of(task.id), with_trajectory=False):
        st.markdown("**Regenerated** · reason: " + escape_markdown(child.regeneration_reason or "—"))
        _pair("rejected", task, "regenerated", child, open_task)
    if task.status == "rejected" and task.kind == "atomic":
        left, right = st.columns([3, 1])
        reason_key = f"regenerate_reason_{task.id}"
        left.text_input("Feedback for the new question", key=reason_key,
                        placeholder="Default: the reason it was rejected")
        right.button("Regenerate with this reason", key="review_regenerate", disabled=not reviewer,
                     on_click=_regenerate, args=(task.id, reason_key))
    replays = ws.store.replays_for(task.id)
    if task.stale:
        st.warning("Stale: a replay on the current corpus no longer reaches the golden answer.")
    if replays:
        latest = replays[0]
        verdict = "still holds" if latest.holds else "changed"
        st.markdown(f"**Replay** {latest.created_at:%Y-%m-%d %H:%M} · {verdict} · judge score {latest.score}/2 · "
                    f"{latest.tool_steps} tool steps  \n" + escape_markdown(latest.answer or "—"))
        with st.expander(f"Replay trajectory ({len(latest.trajectory)} steps; {len(replays)} replays in all)"):
            for step in latest.trajectory:
                text = step.observation or step.content or ""
                st.text(f"{step.position} · {step.type}{' · ' + step.tool if step.tool else ''} · {text[:300]}")
    if task.status == "accepted":
        st.button("Replay on the current corpus", key="review_replay", on_click=_replay, args=(task.id,))
