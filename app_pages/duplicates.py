"""Duplicates: clusters of near-duplicate tasks, side by side with their differences marked;
keep one (the others are rejected as duplicates), dismiss as not duplicates, or open in Review.

Finding clusters scans the whole task index, so it runs on request and the result is kept for
the session; each action removes its cluster from the list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from app_pages._common import (
    OPEN_IN_REVIEW,
    escape_markdown,
    index_catching_up,
    reviewer_input,
    user_errors,
    workspace,
)
from taskcraft_core.access import Principal
from taskcraft_core.curate import dedup, review_queue
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.workspace import Workspace

CLUSTERS, NOTICE = "duplicates_clusters", "duplicates_notice"
SHOWN_SIDE_BY_SIDE = 4


def find(ws: Workspace) -> None:
    catching_up = index_catching_up("near-duplicate search opens when it is done")
    threshold = st.slider("Cosine threshold", 0.5, 1.0, ws.settings.duplicate_threshold, 0.01,
                          key="duplicates_threshold")
    if st.button("Find near-duplicates", key="duplicates_find", type="primary", disabled=catching_up):
        with user_errors(), st.spinner("Comparing tasks…"):
            clusters = dedup.find_near_duplicates(ws, threshold=threshold)
            ranked = sorted(clusters, key=lambda c: (-len(c.task_ids), -c.max_similarity))
            st.session_state[CLUSTERS] = [cluster.model_dump() for cluster in ranked]


def settle(index: int, action: Callable[[], None]) -> None:
    """Apply a decision on cluster `index`; a decided cluster leaves the list."""
    try:
        action()
    except TaskCraftError as error:
        st.session_state[NOTICE] = escape_markdown(f"{error.message} {error.hint}".strip())
        return
    st.session_state[CLUSTERS] = [c for i, c in enumerate(st.session_state[CLUSTERS]) if i != index]


def keep(index: int, cluster: dict[str, Any], keep_id: str, reviewer: Principal) -> None:
    """Keep one; if a member was decided since the clusters were found, nothing changes and the
    conflict is shown (the cluster stays until it is found again)."""
    settle(index, lambda: dedup.keep_one(workspace(), cluster["task_ids"], keep_id, reviewer.id,
                                         seen_reviews=cluster["latest_review_ids"]))


def not_duplicates(index: int, task_ids: list[str], reviewer: Principal) -> None:
    settle(index, lambda: dedup.dismiss_cluster(workspace(), task_ids, reviewer.id))


def show_cluster(ws: Workspace, index: int, cluster: dict[str, Any], reviewer: Principal) -> None:
    blocked = not reviewer.id or not reviewer.can("review")
    task_ids: list[str] = list(cluster["task_ids"])
    tasks = ws.store.get_tasks(task_ids[:SHOWN_SIDE_BY_SIDE], with_trajectory=False)
    st.dataframe(cluster["pairs"], hide_index=True)
    first = tasks[0]
    columns = st.columns(len(tasks))
    for column, task in zip(columns, tasks, strict=False):
        with column, st.container(border=True):
            st.caption(f"{escape_markdown(task.id)} · {task.kind} · **{task.status}** · "
                       f"difficulty {task.difficulty}")
            question = review_queue.highlight_differences(first.question, task.question)[1]
            answer = review_queue.highlight_differences(review_queue.answer_as_text(first.golden_answer),
                                                        review_queue.answer_as_text(task.golden_answer))[1]
            st.html(f'<div style="white-space: pre-wrap"><b>Q</b> {question}<br><b>A</b> {answer}</div>')
            st.markdown(escape_markdown(task.content_identifier))
            st.button("Keep this one", key=f"duplicates_keep_{task.id}", disabled=blocked,
                      on_click=keep, args=(index, cluster, task.id, reviewer))
            if st.button("Open in Review", key=f"duplicates_open_{task.id}"):
                st.session_state[OPEN_IN_REVIEW] = task.id
                st.switch_page("app_pages/review.py")
    if len(task_ids) > SHOWN_SIDE_BY_SIDE:
        st.caption(f"{len(task_ids) - SHOWN_SIDE_BY_SIDE} more tasks in this cluster are not shown.")
    st.button("Not duplicates", key="duplicates_dismiss", disabled=blocked, on_click=not_duplicates,
              args=(index, task_ids, reviewer))
    if blocked:
        st.caption("Enter your name to keep one or dismiss the cluster." if reviewer.local else
                   f"Keeping or dismissing needs the reviewer role (you are a {reviewer.role}).")


st.title("Duplicates")
ws = workspace()
reviewer = reviewer_input()
find(ws)
if notice := st.session_state.pop(NOTICE, None):
    st.error(notice)
clusters = st.session_state.get(CLUSTERS)
if clusters is None:
    st.info("Find near-duplicates to see clusters of tasks that ask the same thing.")
elif not clusters:
    st.success("No near-duplicate clusters left at this threshold.")
else:
    labels = {i: f"#{i + 1} · {len(c['task_ids'])} tasks · similarity {c['max_similarity']:.2f}"
                 + (" · structural" if any(p["structural"] for p in c["pairs"]) else "")
              for i, c in enumerate(clusters)}
    chosen = st.selectbox(f"Clusters ({len(clusters)})", list(labels), format_func=labels.get,
                          key="duplicates_cluster")
    show_cluster(ws, min(chosen, len(clusters) - 1), clusters[min(chosen, len(clusters) - 1)], reviewer)
