"""Review: step through the queue one task at a time and decide.

Only the card reruns on a decision (`st.fragment`); decisions are callbacks, so the next task
renders in the same run. Ids, positions and notices live in session state, never task objects; the
history holds (task id, review id) of this session's decisions, so Undo takes back exactly the
decision this session made, and only while nobody decided that task after it.
"""

from __future__ import annotations

import streamlit as st

from pages._common import OPEN_IN_REVIEW, escape_markdown, filter_widgets, reviewer_input, user_errors, workspace
from taskcraft_core.curate import dedup
from taskcraft_core.curate import review_queue as rq
from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.store import TaskFilter

POSITION, PINNED, HISTORY, EDITING, NOTICE, SIMILAR, FILTER = (
    "review_position", "review_pinned", "review_history", "review_editing", "review_notice", "review_similar",
    "review_filter",
)


def init_state(task_filter: TaskFilter) -> None:
    for key, value in ((POSITION, 0), (PINNED, None), (HISTORY, []), (EDITING, False), (NOTICE, None),
                       (SIMILAR, None)):
        st.session_state.setdefault(key, value)
    fingerprint = task_filter.model_dump_json()
    if st.session_state.get(FILTER, fingerprint) != fingerprint:  # a new queue starts at its beginning
        st.session_state.update({POSITION: 0, PINNED: None})
    st.session_state[FILTER] = fingerprint
    if requested := st.session_state.pop(OPEN_IN_REVIEW, None):
        open_task(requested)


# ---- actions (callbacks: they run before the card renders again) -----------------------------


def go_to(position: int) -> None:
    st.session_state.update({POSITION: max(0, position), PINNED: None, EDITING: False, NOTICE: None, SIMILAR: None})


def open_task(task_id: str) -> None:
    st.session_state.update({PINNED: task_id, EDITING: False, NOTICE: None, SIMILAR: None})


def record(card: rq.Card, task_filter: TaskFilter, reviewer: str, decision: str, **details: object) -> None:
    store = workspace().store
    try:
        review = rq.decide(store, card, reviewer, decision, **details)  # type: ignore[arg-type]
    except ReviewConflict as conflict:
        st.session_state[NOTICE] = ("conflict", conflict.message, conflict.hint)
        return
    except TaskCraftError as error:
        st.session_state[NOTICE] = ("error", error.message, error.hint)
        return
    st.session_state[HISTORY] = [*st.session_state[HISTORY], (card.task.id, review.id)]
    if decision == "edit":  # an edit keeps the task on screen so it can be decided next
        st.session_state.update({EDITING: False, NOTICE: ("success", "Edit saved; the original is kept.", "")})
    elif card.position is None:
        st.session_state.update({PINNED: None, NOTICE: None})
    else:
        go_to(rq.position_after_decision(store, task_filter, card.task.id, card.position))


def reject(card: rq.Card, task_filter: TaskFilter, reviewer: str) -> None:
    reason = rq.reject_reason(st.session_state["reject_reason"], st.session_state.get("reject_details", ""))
    record(card, task_filter, reviewer, "reject", reason=reason)


def save_edit(card: rq.Card, task_filter: TaskFilter, reviewer: str) -> None:
    edits = rq.edits_from_form(card.task, st.session_state["edit_question"], st.session_state["edit_answer"])
    if not edits:
        st.session_state[NOTICE] = ("info", "Nothing changed.", "")
        return
    record(card, task_filter, reviewer, "edit", edits=edits)


def undo_last(reviewer: str) -> None:
    """Take back this session's newest decision and show its task again. If someone decided that
    task after it, theirs stands: the task is shown with the conflict, and the decision leaves the
    history (it can no longer be taken back from here)."""
    history = list(st.session_state[HISTORY])
    task_id, review_id = history.pop()
    try:
        rq.undo(workspace().store, review_id, reviewer)
    except ReviewConflict as conflict:
        st.session_state[HISTORY] = history
        open_task(task_id)
        st.session_state[NOTICE] = ("conflict", conflict.message, conflict.hint)
        return
    except TaskCraftError as error:
        st.session_state[NOTICE] = ("error", error.message, error.hint)
        return
    st.session_state[HISTORY] = history
    open_task(task_id)


# ---- the card ----------------------------------------------------------------------------------


def show_notice() -> None:
    notice = st.session_state[NOTICE]
    if not notice:
        return
    kind, message, hint = notice
    text = escape_markdown(f"{message} {hint}".strip())  # messages name tasks and reviewers
    if kind == "conflict":
        st.warning(text)
        st.button("Reload task", key="review_reload", on_click=st.session_state.update, args=({NOTICE: None},))
    else:
        {"error": st.error, "info": st.info, "success": st.success}[kind](text)


def show_progress(card: rq.Card) -> None:
    decided = len(st.session_state[HISTORY])
    if card.position is None:
        st.caption(f"Opened directly · {card.total} in the queue · {decided} decided this session")
        st.button("Back to the queue", key="review_back", on_click=go_to, args=(st.session_state[POSITION],))
        return
    st.progress((card.position + 1) / card.total,
                text=f"Task {card.position + 1} of {card.total} · {decided} decided this session")


def show_task(card: rq.Card) -> None:
    task = card.task
    st.caption(f"{escape_markdown(task.id)} · {task.kind} · **{task.status}** · difficulty {task.difficulty} · "
               f"hops {task.hops} · width {task.width} · "
               f"{escape_markdown(task.engine)} / {escape_markdown(task.model)}")
    st.markdown("**Question**  \n" + escape_markdown(task.question))
    answer = task.golden_answer
    lines = [f"{n}\\. {escape_markdown(part)}" for n, part in enumerate(answer, 1)] if isinstance(answer, list) \
        else [escape_markdown(answer)]
    st.markdown("**Golden answer**  \n" + "  \n".join(lines))
    st.markdown(f"**Identifier** {escape_markdown(task.content_identifier)}  \n"
                f"**Relation** {escape_markdown(task.relation or '—')}")
    if task.failure_reason:
        st.warning("Failed verification: " + escape_markdown(task.failure_reason))
    show_lineage(card)
    if card.evidence:
        st.markdown(f"**Evidence** (page {card.evidence.page})")
        st.html(card.evidence.to_html())


def show_lineage(card: rq.Card) -> None:
    for label, ids in (("Parents", card.parent_ids), ("Children", card.child_ids)):
        if ids:
            columns = st.columns([1] + [2] * min(len(ids), 5))
            columns[0].caption(label)
            for column, task_id in zip(columns[1:], ids[:5], strict=False):
                # Button labels render Markdown: an id like "__init__" must show as written.
                column.button(escape_markdown(task_id), key=f"lineage_{task_id}", on_click=open_task, args=(task_id,))


def show_verification(card: rq.Card) -> None:
    check = card.task.verification
    if not check:
        return
    alone, agent = st.columns(2)
    alone.markdown(f"**Model alone** · judge score {check.model_alone_score}/2  \n"
                   + escape_markdown(check.model_alone_answer or "—"))
    agent.markdown(f"**Agent with tools** · judge score {check.agent_score}/2 · {check.agent_steps} steps  \n"
                   + escape_markdown(check.agent_answer or "—"))
    if check.judge_rationale:
        with st.expander("Judge rationale"):
            st.markdown(escape_markdown(check.judge_rationale))


def show_trajectory(card: rq.Card) -> None:
    st.markdown(f"**Trajectory** · {len(card.steps)} steps")
    for step in card.steps:
        with st.expander(escape_markdown(step.title)):
            if step.thought:
                st.markdown(escape_markdown(step.thought))
            if step.args:
                st.code(step.args, language="json", wrap_lines=True)
            if step.observation:
                st.code(step.observation, language=None, wrap_lines=True)
            if step.truncated:
                st.caption("Long text cut for display; the export carries it whole.")


def show_actions(card: rq.Card, task_filter: TaskFilter, reviewer: str) -> None:
    blocked = not reviewer
    reason, details = st.columns([1, 2])
    reason.selectbox("Reject reason", rq.REJECT_REASONS, key="reject_reason")
    details.text_input("Reject details", key="reject_details", placeholder="Optional, in your own words")
    args = (card, task_filter, reviewer)
    buttons = st.columns(7)
    buttons[0].button("Accept", key="review_accept", type="primary", shortcut="A", disabled=blocked,
                      on_click=record, args=(*args, "accept"))
    buttons[1].button("Reject", key="review_reject", shortcut="X", disabled=blocked, on_click=reject, args=args)
    buttons[2].button("Edit", key="review_edit", shortcut="E", disabled=blocked,
                      on_click=st.session_state.update, args=({EDITING: not st.session_state[EDITING]},))
    position = card.position if card.position is not None else st.session_state[POSITION]
    buttons[3].button("Skip", key="review_skip", shortcut="S", on_click=go_to, args=(position + 1,))
    buttons[4].button("Undo", key="review_undo", shortcut="Z", on_click=undo_last, args=(reviewer,),
                      disabled=blocked or not st.session_state[HISTORY])
    buttons[5].button("Previous", key="review_previous", shortcut="P", on_click=go_to, args=(position - 1,),
                      disabled=card.position == 0)
    buttons[6].button("Next", key="review_next", shortcut="N", on_click=go_to, args=(position + 1,))
    if blocked:
        st.caption("Enter your name above to accept, reject or edit.")
    if st.session_state[EDITING] and not blocked:
        with st.form("edit_form"):
            st.text_area("Question", value=card.task.question, key="edit_question")
            st.text_area("Golden answer (one line per part for width tasks)",
                         value=rq.answer_as_text(card.task.golden_answer), key="edit_answer")
            st.form_submit_button("Save edit", on_click=save_edit, args=args)


def show_similar(card: rq.Card) -> None:
    ws = workspace()
    if st.button("Find similar", key="review_find_similar"):
        st.session_state[SIMILAR] = card.task.id
    if st.session_state[SIMILAR] != card.task.id:
        return
    with user_errors():
        similar = dedup.find_similar(ws, card.task.id, k=5)
        if not similar:
            st.caption("No similar tasks.")
        for task, score in similar:
            left, right = st.columns([4, 1])
            left.markdown(f"{score:.2f} · {task.status} · " + escape_markdown(task.question))
            right.button("Open", key=f"similar_{task.id}", on_click=open_task, args=(task.id,))


@st.fragment
def review_card(task_filter: TaskFilter, reviewer: str) -> None:
    ws = workspace()
    card = rq.load_card(ws.store, task_filter, st.session_state[POSITION], st.session_state[PINNED])
    show_notice()
    if card is None:
        st.info("No tasks match these filters. Generate some, or widen the filters.")
        return
    show_progress(card)
    show_actions(card, task_filter, reviewer)
    show_task(card)
    show_verification(card)
    show_trajectory(card)
    show_similar(card)
    with st.expander("Review history"):
        for review in ws.store.reviews_for(card.task.id):
            st.text(f"{review.created_at:%Y-%m-%d %H:%M} · {review.reviewer} · {review.decision} · {review.reason}")


st.title("Review")
ws = workspace()
reviewer = reviewer_input()
task_filter = filter_widgets("review", ws, default_statuses=["pending"])
init_state(task_filter)
review_card(task_filter, reviewer)
