"""Review: step through a queue one task at a time and decide.

Layout, top to bottom: who reviews and which queue, the filters (collapsed to a one-line summary),
then the card: the question, the golden answer and the decision bar first (above the fold at
1400x1000), the trajectory stepper right below, then details (verification, evidence, lineage),
similar tasks and the history. Each part is one `show_*` function; add to the card in its section.

Only the card reruns on a decision (`st.fragment`); decisions are callbacks, so the next task
renders in the same run. Ids, positions and notices live in session state, never task objects; the
history holds (task id, review id) of this session's decisions, so Undo takes back exactly the
decision this session made, and only while nobody decided that task after it.

With `reviews_per_task` > 1 each reviewer works through their own queue (tasks they have not
decided); deciding a task again changes their own vote. Disputed tasks wait on the Adjudicate
queue, which adjudicators see. `?task=ID` opens that task directly (shareable, bookmarkable).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages._common import (
    OPEN_IN_REVIEW,
    escape_markdown,
    filter_widgets,
    index_catching_up,
    reviewer_input,
    user_errors,
    workspace,
)
from app_pages._lineage import show_regeneration_and_replay
from taskcraft_core.access import Principal
from taskcraft_core.curate import review_queue as rq
from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter

POSITION, PINNED, HISTORY, EDITING, NOTICE, SIMILAR, FILTER, LINKED = (
    "review_position", "review_pinned", "review_history", "review_editing", "review_notice", "review_similar",
    "review_filter", "review_linked",
)
QUEUES: dict[rq.Queue, str] = {"review": "Review", "adjudicate": "Adjudicate"}


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
    linked = st.query_params.get("task")
    if linked and linked != st.session_state.get(LINKED):  # a link opens its task once per session
        st.session_state[LINKED] = linked
        open_task(linked)


def choose_queue(settings: Settings, reviewer: Principal) -> rq.Queue:
    """Adjudicators choose between their review queue and the disputed tasks; others review."""
    if not rq.may_adjudicate(settings, reviewer):
        return "review"
    chosen = st.segmented_control("Queue", list(QUEUES), format_func=lambda queue: QUEUES[queue], default="review",
                                  key="review_queue", label_visibility="collapsed")
    return chosen or "review"


# ---- actions (callbacks: they run before the card renders again) -----------------------------


def go_to(position: int) -> None:
    st.session_state.update({POSITION: max(0, position), PINNED: None, EDITING: False, NOTICE: None, SIMILAR: None})


def open_task(task_id: str) -> None:
    st.session_state.update({PINNED: task_id, EDITING: False, NOTICE: None, SIMILAR: None})


def record(card: rq.Card, queue_filter: TaskFilter, reviewer: Principal, decision: str, override: bool = False,
           **details: Any) -> None:
    ws = workspace()
    adjudication = queue_filter.disputed is True
    try:
        review = rq.decide(ws.store, ws.settings, card, reviewer, decision, override=override,  # type: ignore[arg-type]
                           adjudication=adjudication, **details)
    except ReviewConflict as conflict:
        # Keep the task on screen, now with its newest state, and offer to record the same decision
        # anyway, as a deliberate override (it may have left the queue meanwhile).
        open_task(card.task.id)
        st.session_state[NOTICE] = ("conflict", conflict.message, conflict.hint, (card.task.id, decision, details))
        return
    except TaskCraftError as error:
        st.session_state[NOTICE] = ("error", error.message, error.hint, None)
        return
    st.session_state[HISTORY] = [*st.session_state[HISTORY], (card.task.id, review.id)]
    if decision == "edit":  # an edit keeps the task on screen so it can be decided next
        st.session_state.update({EDITING: False, NOTICE: ("success", "Edit saved; the original is kept.", "", None)})
    elif card.position is None:
        st.session_state.update({PINNED: None, NOTICE: None})
    else:
        go_to(rq.position_after_decision(ws.store, queue_filter, card.task.id, card.position))


def reject(card: rq.Card, queue_filter: TaskFilter, reviewer: Principal) -> None:
    reason = rq.reject_reason(st.session_state["reject_reason"], st.session_state.get("reject_details", ""))
    record(card, queue_filter, reviewer, "reject", reason=reason)


def save_edit(card: rq.Card, queue_filter: TaskFilter, reviewer: Principal) -> None:
    edits = rq.edits_from_form(card.task, st.session_state["edit_question"], st.session_state["edit_answer"])
    if not edits:
        st.session_state[NOTICE] = ("info", "Nothing changed.", "", None)
        return
    record(card, queue_filter, reviewer, "edit", edits=edits)


def undo_last(reviewer: Principal) -> None:
    """Take back this session's newest decision and show its task again. If someone decided that
    task after it, theirs stands: the task is shown with the conflict, and the decision leaves the
    history (it can no longer be taken back from here)."""
    history = list(st.session_state[HISTORY])
    task_id, review_id = history.pop()
    ws = workspace()
    try:
        rq.undo(ws.store, ws.settings, review_id, reviewer)
    except ReviewConflict as conflict:
        st.session_state[HISTORY] = history
        open_task(task_id)
        st.session_state[NOTICE] = ("conflict", conflict.message, conflict.hint, None)
        return
    except TaskCraftError as error:
        st.session_state[NOTICE] = ("error", error.message, error.hint, None)
        return
    st.session_state[HISTORY] = history
    open_task(task_id)


# ---- the card: header and notices --------------------------------------------------------------


def show_notice(card: rq.Card | None, queue_filter: TaskFilter, reviewer: Principal) -> None:
    notice = st.session_state[NOTICE]
    if not notice:
        return
    kind, message, hint, pending = notice
    text = escape_markdown(f"{message} {hint}".strip())  # messages name tasks and reviewers
    if kind != "conflict":
        {"error": st.error, "info": st.info, "success": st.success}[kind](text)
        return
    st.warning(text)
    reload, override = st.columns([1, 3])
    reload.button("Reload task", key="review_reload", on_click=st.session_state.update, args=({NOTICE: None},))
    if pending and card is not None and card.task.id == pending[0]:
        _, decision, details = pending
        override.button(f"Record my {decision} anyway (override)", key="review_override", on_click=record,
                        args=(card, queue_filter, reviewer, decision, True), kwargs=details)


def show_progress(card: rq.Card) -> None:
    decided = len(st.session_state[HISTORY])
    if card.position is None:
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(f"Opened directly · {card.total} in the queue · {decided} decided this session")
        right.button("Back to the queue", key="review_back", on_click=go_to, args=(st.session_state[POSITION],))
    else:
        st.progress((card.position + 1) / card.total,
                    text=f"Task {card.position + 1} of {card.total} · {decided} decided this session")
    task = card.task
    st.caption(f"{escape_markdown(task.id)} · {task.kind} · **{task.status}** · difficulty {task.difficulty} · "
               f"hops {task.hops} · width {task.width} · "
               f"{escape_markdown(task.engine)} / {escape_markdown(task.model)}")


def show_question(card: rq.Card) -> None:
    task = card.task
    show_checks(task.checks or {})
    with st.container(key="review_question"):
        st.markdown("**Question**  \n" + escape_markdown(task.question))
    answer = task.golden_answer
    lines = [f"{n}\\. {escape_markdown(part)}" for n, part in enumerate(answer, 1)] if isinstance(answer, list) \
        else [escape_markdown(answer)]
    st.markdown("**Golden answer**  \n" + "  \n".join(lines))


def show_votes(card: rq.Card, reviewer: Principal, settings: Settings, adjudicating: bool) -> None:
    """Decisions so far when several reviewers decide a task; side by side for an adjudicator."""
    if settings.reviews_per_task <= 1 and not adjudicating:
        return
    votes = card.votes
    if adjudicating and votes:
        columns = st.columns(len(votes))
        for column, vote in zip(columns, votes, strict=True):
            column.markdown(f"**{escape_markdown(vote.reviewer)}**: {vote.decision}  \n"
                            + escape_markdown(vote.reason or "—"))
        return
    own = card.own_vote(reviewer.id)
    summary = f"{len(votes)} of {settings.reviews_per_task} decisions in"
    if own:
        summary += f" · yours: **{own.decision}** (decide again to change it)"
    st.caption(summary + (" · disputed, waiting for an adjudicator" if card.disputed else ""))


# ---- the card: the decision bar ----------------------------------------------------------------


def show_actions(card: rq.Card, queue_filter: TaskFilter, reviewer: Principal) -> None:
    blocked = not reviewer.id or not reviewer.can("review")
    args = (card, queue_filter, reviewer)
    final = " (final)" if queue_filter.disputed else ""
    buttons = st.columns(7)
    buttons[0].button("Accept" + final, key="review_accept", type="primary", shortcut="A", disabled=blocked,
                      on_click=record, args=(*args, "accept"))
    buttons[1].button("Reject" + final, key="review_reject", shortcut="X", disabled=blocked, on_click=reject,
                      args=args)
    buttons[2].button("Edit", key="review_edit", shortcut="E", disabled=blocked,
                      on_click=st.session_state.update, args=({EDITING: not st.session_state[EDITING]},))
    position = card.position if card.position is not None else st.session_state[POSITION]
    buttons[3].button("Skip", key="review_skip", shortcut="S", on_click=go_to, args=(position + 1,))
    buttons[4].button("Undo", key="review_undo", shortcut="Z", on_click=undo_last, args=(reviewer,),
                      disabled=blocked or not st.session_state[HISTORY])
    buttons[5].button("Previous", key="review_previous", shortcut="P", on_click=go_to, args=(position - 1,),
                      disabled=card.position == 0)
    buttons[6].button("Next", key="review_next", shortcut="N", on_click=go_to, args=(position + 1,))
    reason, details = st.columns([1, 2])
    reason.selectbox("Reject reason", rq.REJECT_REASONS, key="reject_reason", label_visibility="collapsed")
    details.text_input("Reject details", key="reject_details", placeholder="Reject details, optional, in your own "
                       "words", label_visibility="collapsed")
    if blocked:
        st.caption("Enter your name above to accept, reject or edit." if reviewer.local else
                   f"You can read the queue; deciding needs the reviewer role (you are a {reviewer.role}).")
    if st.session_state[EDITING] and not blocked:
        with st.form("edit_form"):
            st.text_area("Question", value=card.task.question, key="edit_question")
            st.text_area("Golden answer (one line per part for width tasks)",
                         value=rq.answer_as_text(card.task.golden_answer), key="edit_answer")
            st.form_submit_button("Save edit", on_click=save_edit, args=args)


# ---- the card: trajectory, details, similar, history ------------------------------------------


def show_trajectory(card: rq.Card) -> None:
    """A stepper: one step shown at a time (the first by default), the others one click away, so a
    long trajectory costs the first paint one step, not all of them."""
    st.markdown(f"**Trajectory** · {len(card.steps)} steps")
    if not card.steps:
        return
    chosen = st.segmented_control(
        "Step", list(range(len(card.steps))), default=0, key=f"review_step_{card.task.id}",
        format_func=lambda i: f"{card.steps[i].number} {card.steps[i].action}", label_visibility="collapsed")
    step = card.steps[chosen or 0]
    st.caption(escape_markdown(step.title))
    if step.thought:
        st.markdown(escape_markdown(step.thought))
    if step.args:
        st.code(step.args, language="json", wrap_lines=True)
    if step.observation:
        st.code(step.observation, language=None, wrap_lines=True)
    if step.truncated:
        st.caption("Long text cut for display; the export carries it whole.")


def show_details(card: rq.Card) -> None:
    task = card.task
    st.markdown(f"**Identifier** {escape_markdown(task.content_identifier)}  \n"
                f"**Relation** {escape_markdown(task.relation or '—')}")
    if task.failure_reason:
        st.warning("Failed verification: " + escape_markdown(task.failure_reason))
    show_verification(card)
    show_lineage(card)
    if card.evidence:
        st.markdown(f"**Evidence** (page {card.evidence.page})")
        st.html(card.evidence.to_html())


def show_checks(flagged: dict[str, str]) -> None:
    """A badge per automatic pre-review check the task fails, with what each found."""
    if flagged:
        st.markdown(" ".join(f":orange-badge[:material/flag: {name}]" for name in flagged),
                    help="\n\n".join(f"**{name}**: {escape_markdown(detail)}" for name, detail in flagged.items()))


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


def show_similar(card: rq.Card) -> None:
    clicked = st.button("Find similar", key="review_find_similar")
    if clicked and not index_catching_up("finding similar tasks opens when it is done"):
        st.session_state[SIMILAR] = card.task.id
    if st.session_state[SIMILAR] != card.task.id:
        return
    from taskcraft_core.curate import dedup  # loads the vector index: only when asked, never on first paint

    with user_errors():
        similar = dedup.find_similar(workspace(), card.task.id, k=5)
        if not similar:
            st.caption("No similar tasks.")
        for task, score in similar:
            left, right = st.columns([4, 1])
            left.markdown(f"{score:.2f} · {task.status} · " + escape_markdown(task.question))
            right.button("Open", key=f"similar_{task.id}", on_click=open_task, args=(task.id,))


def show_history(card: rq.Card) -> None:
    with st.expander(f"Review history · {len(card.history)} decisions"):
        for review in card.history:
            flags = "".join(f" · {flag}" for flag in ("override", "adjudication") if getattr(review, flag))
            flags += {"history": " · imported, not in force", "decision": " · imported"}.get(review.imported or "", "")
            st.text(f"{review.created_at:%Y-%m-%d %H:%M} · {review.reviewer} · {review.decision}{flags} · "
                    f"{review.reason}")


@st.fragment
def review_card(queue_filter: TaskFilter, reviewer: Principal) -> None:
    ws = workspace()
    card = rq.load_card(ws.store, queue_filter, st.session_state[POSITION], st.session_state[PINNED], reviewer.id)
    show_notice(card, queue_filter, reviewer)
    if card is None:
        if st.session_state[PINNED]:
            st.error(f"No task with id {escape_markdown(st.session_state[PINNED])}.")
            st.button("Back to the queue", key="review_back", on_click=go_to, args=(st.session_state[POSITION],))
        else:
            st.info("No tasks match these filters. Generate some, or widen the filters.")
        return
    show_progress(card)
    show_question(card)
    show_votes(card, reviewer, ws.settings, adjudicating=queue_filter.disputed is True)
    show_actions(card, queue_filter, reviewer)
    show_regeneration_and_replay(card.task, reviewer.id if reviewer.can("review") else "", open_task)
    show_trajectory(card)
    show_details(card)
    show_similar(card)
    show_history(card)


st.title("Review")
ws = workspace()
who, which = st.columns([3, 2], vertical_alignment="bottom")
with who:
    reviewer = reviewer_input()
with which:
    queue = choose_queue(ws.settings, reviewer)
task_filter = filter_widgets("review", ws, default_statuses=["pending"], expanded=False)
queue_filter = rq.queue_filter(task_filter, queue, reviewer.id, ws.settings.reviews_per_task)
init_state(queue_filter)
review_card(queue_filter, reviewer)
