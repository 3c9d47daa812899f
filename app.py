"""TaskCraft Studio: `streamlit run app.py`.

The router and the shared frame: the sign-in gate (team mode), navigation by role, the data home,
the active engine and who is signed in, in the sidebar. Every screen lives in `app_pages/` and only
calls `taskcraft_core`. The folder is not called `pages/`: Streamlit runs the files of a `pages/`
folder beside the entry script as pages of their own when a URL such as `/review` is the first
request of a fresh server, which would skip this frame and its gate.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import streamlit as st

from app_pages._common import engine_label, escape_markdown, principal, team_mode, workspace
from taskcraft_core.access import AccessDenied, Permission, Principal

st.set_page_config(page_title="TaskCraft Studio", page_icon=":material/construction:", layout="wide")

# Each screen with the permission needed to see it (the services check again for every action).
PAGES: list[tuple[st.Page, Permission]] = [
    (st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True), "read"),
    (st.Page("app_pages/corpus.py", title="Corpus", icon=":material/library_books:"), "ingest"),
    (st.Page("app_pages/generate.py", title="Generate", icon=":material/play_circle:"), "generate"),
    (REVIEW := st.Page("app_pages/review.py", title="Review", icon=":material/fact_check:"), "read"),
    (st.Page("app_pages/insights.py", title="Insights", icon=":material/insights:"), "read"),
    (st.Page("app_pages/duplicates.py", title="Duplicates", icon=":material/content_copy:"), "review"),
    (st.Page("app_pages/export.py", title="Export", icon=":material/download:"), "export"),
    (st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:"), "settings"),
]


# A shared task link (`/review?task=ID`) opened before sign-in: st.login returns to the studio's root
# in a new session, so the gate keeps the task id in a short-lived cookie the first run after reads back.
LINK_COOKIE = "taskcraft_linked_task"
LINK_COOKIE_MAX_AGE_S = 900
LINK_RESTORED = "linked_task_restored"
MAX_TASK_ID = 64


def set_link_cookie(task_id: str, max_age_s: int) -> None:
    # json.dumps makes a JS string literal; "<" escaped so the value cannot close the script.
    value = json.dumps(task_id).replace("<", "\\u003c")
    st.html(f"<script>document.cookie = '{LINK_COOKIE}=' + encodeURIComponent({value}) + "
            f"'; path=/; max-age={max_age_s}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def linked_task_after_sign_in() -> str | None:
    """The task a link asked for before sign-in, once per session; the run after clears the cookie
    (a switch of page drops what the run that switched drew)."""
    restored = st.session_state.get(LINK_RESTORED)
    if restored == "clear":
        set_link_cookie("", 0)
        st.session_state[LINK_RESTORED] = "done"
    if restored:
        return None
    task_id = unquote(st.context.cookies.get(LINK_COOKIE, ""))  # the script wrote it URI-encoded
    st.session_state[LINK_RESTORED] = "clear" if task_id else "done"
    return task_id[:MAX_TASK_ID] or None


def sign_in_gate() -> Principal:
    """The acting principal; in team mode nothing past this point renders before sign-in."""
    if not team_mode():
        return principal()
    if not st.user.is_logged_in:
        st.title("TaskCraft Studio")
        st.write("Sign in to open the studio.")
        if linked := st.query_params.get("task"):
            set_link_cookie(linked[:MAX_TASK_ID], LINK_COOKIE_MAX_AGE_S)
            st.caption("The linked task opens after sign-in.")
        if st.button("Log in", key="login", type="primary"):
            st.login()
        st.stop()
    try:
        return principal()
    except AccessDenied as refused:
        st.error(escape_markdown(refused.message))
        st.info(escape_markdown(refused.hint))
        if st.button("Log out", key="logout"):
            st.logout()
        st.stop()
    raise AssertionError("unreachable: st.stop ends the run")


def sidebar(who: Principal) -> None:
    settings = workspace().settings
    with st.sidebar:
        st.caption("Data home")
        st.text(str(settings.home.resolve()))
        st.caption("Engine")
        st.text(engine_label(settings))
        if team_mode():
            st.caption("Signed in")
            st.text(f"{who.label} · {who.role}")
            if st.button("Log out", key="logout"):
                st.logout()


who = sign_in_gate()
sidebar(who)
allowed = [page for page, needed in PAGES if who.can(needed)]
chosen = st.navigation(allowed)
if team_mode() and (linked := linked_task_after_sign_in()) and REVIEW in allowed:
    st.switch_page(REVIEW, query_params={"task": linked})
chosen.run()
