"""What every page shares: who is acting, the cached workspace, the engine banner, error display, escaping.

Settings come from the environment, then `[taskcraft]` in Streamlit secrets (when a secrets file
exists), then what the Settings page keeps in session memory (the API key lives only there).
With `[auth]` in secrets the studio is in team mode: the acting principal is the signed-in person
with the role `[taskcraft.roles]` gives them; without it, local mode: one person who may do all.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from taskcraft_core.access import Permission, Principal, local_principal, signed_in_principal
from taskcraft_core.curate import review_queue
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.consistency import IndexCatchUp
from taskcraft_core.schema import CHECK_NAMES, TASK_KINDS, TASK_STATUSES
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import (
    Workspace,
    environment_failure_of,
    open_workspace_catching_up,
    settings_from_environment,
)

SETTINGS_OVERRIDES = "settings_overrides"
REVIEWER = "reviewer"
OPEN_IN_REVIEW = "review_open_request"  # a task id another page asks Review to show
OPTIONS_TTL_S = 10
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def secrets_section(name: str) -> dict[str, Any]:
    """One section of Streamlit secrets, or nothing when no secrets file exists."""
    if not st.secrets.load_if_toml_exists():
        return {}
    section = st.secrets.get(name)
    return dict(section) if section else {}


def team_mode() -> bool:
    """Sign-in is configured: every page requires it and roles apply."""
    return bool(secrets_section("auth"))


def principal() -> Principal:
    """Who is acting in this session: the signed-in person (team mode; AccessDenied when the provider
    gave no email), else the local user under the reviewer name they typed."""
    if team_mode():
        roles = secrets_section("taskcraft").get("roles") or {}
        return signed_in_principal(st.user.get("email"), st.user.get("name"), dict(roles))  # type: ignore[arg-type]
    return local_principal(str(st.session_state.get(REVIEWER, "")))


def current_settings() -> Settings:
    """Environment, then secrets, then the Settings page's overrides for this session."""
    secrets = {key: value for key, value in secrets_section("taskcraft").items() if key != "roles"}
    changes = {**secrets, **st.session_state.get(SETTINGS_OVERRIDES, {})}
    changes = {key: value for key, value in changes.items() if value not in (None, "")}
    base = settings_from_environment()
    return base.with_changes(**changes) if changes else base


@st.cache_resource(show_spinner="Opening the data home (the vector index is checked against the database)…")
def _open_workspace(storage_key: tuple[str, str, str, str], _settings: Settings) -> tuple[Workspace, IndexCatchUp]:
    # Keyed by what the database and the index depend on: changing a model or key reuses them. Once
    # per process and data home, so one catch-up thread at most (other processes wait on a lock).
    return open_workspace_catching_up(_settings)


def _opened() -> tuple[Workspace, IndexCatchUp]:
    settings = current_settings()
    index = settings.chroma_url or str(settings.chroma_path.resolve())
    key = (settings.resolved_database_url, index, settings.embeddings, settings.embedding_model)
    try:
        return _open_workspace(key, settings)
    except Exception as error:
        failure = environment_failure_of(error, settings)
        if failure is None:
            raise
        show_error(failure)
        st.stop()
    raise AssertionError("unreachable: st.stop ends the run")


def workspace() -> Workspace:
    """The workspace for the current settings, acting as this session's principal; database and
    Chroma clients are shared singletons. When the data home cannot be opened (a damaged database, a
    read-only folder, a full disk) the page shows what failed and what to do, and stops."""
    opened, _ = _opened()
    return dataclasses.replace(opened, settings=current_settings(), principal=principal())


CATCH_UP_POLL_S = 2.0


def index_catching_up(waits: str) -> bool:
    """Say so on pages that search the index while it is brought in step in the background (a large
    import without vectors, a restored index): a note that follows the progress and reruns the page
    when the index is in step. True until then. `waits` says what waits for it."""
    catching_up = _opened()[1].status.state in ("running", "waiting")
    st.fragment(_catch_up_note, run_every=CATCH_UP_POLL_S if catching_up else None)(waits, catching_up)
    return catching_up


def _catch_up_note(waits: str, was_catching_up: bool) -> None:
    status = _opened()[1].status
    if was_catching_up and status.state not in ("running", "waiting"):
        st.rerun()  # the whole page, so what waited for the index opens
    if status.state == "in_step":
        return
    if status.state == "failed":
        st.warning(escape_markdown(f"The search index could not be brought in step with the database: "
                                   f"{status.error}. Searches embed what they need as they go; restart the "
                                   "app to try again."), icon=":material/warning:")
    elif status.state == "waiting":
        st.info(f"Another studio process is bringing the search index in step with the database; {waits}.",
                icon=":material/hourglass_top:")
    elif status.state == "running":
        done = f": {status.done:,} of {status.total:,} {status.what}" if status.total else ""
        st.info(f"The search index is catching up with the database in the background{done}. Reviewing works "
                f"meanwhile; {waits}.", icon=":material/hourglass_top:")


def engine_label(settings: Settings) -> str:
    """What the sidebar says about the engine that will generate tasks."""
    if settings.active_engine == "offline":
        return "Offline engine — deterministic, no model"
    endpoints = " | ".join(settings.endpoints)
    return f"OpenAI-compatible: {settings.model_for('generation')} @ {endpoints}"


def escape_markdown(text: str) -> str:
    """Text from documents and models, shown literally inside Markdown (line breaks kept)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a TaskCraftError as an error with its hint; anything else is a bug and surfaces."""
    try:
        yield
    except TaskCraftError as error:
        show_error(error)
    except Exception as error:
        failure = environment_failure_of(error, current_settings())
        if failure is None:
            raise
        show_error(failure)


def show_error(error: TaskCraftError) -> None:
    st.error(escape_markdown(error.message))  # messages quote ids, names, paths and URLs
    if error.hint:
        st.info(escape_markdown(error.hint))


def reviewer_input() -> Principal:
    """The reviewer: the signed-in person (team mode), else a typed name kept across pages for the
    session. Whether they may decide is `principal().can("review")`."""
    if team_mode():
        who = principal()
        st.text(f"Reviewing as {who.label} ({who.role})")
        return who
    st.session_state.setdefault("reviewer_name", st.session_state.get(REVIEWER, ""))
    name = st.text_input("Reviewer name", key="reviewer_name", placeholder="Required before deciding")
    st.session_state[REVIEWER] = name  # widget state is dropped on other pages; this copy is not
    return principal()


def may(permission: Permission) -> bool:
    """Whether this session's principal may do something (to disable controls; core checks again)."""
    return principal().can(permission)


@st.cache_data(ttl=OPTIONS_TTL_S, show_spinner=False)
def _filter_choices(database_url: str, _ws: Workspace) -> tuple[review_queue.FilterOptions, dict[str, str]]:
    # DISTINCT scans take ~70 ms at 36k tasks; options a few seconds stale are fine, decisions are not slowed.
    return review_queue.filter_options(_ws.store), _ws.store.document_titles()


def _filter_in_state(prefix: str, default_statuses: list[str]) -> TaskFilter:
    """The filter the widgets hold now (before they are drawn), for the collapsed summary."""
    state = st.session_state
    return review_queue.build_filter(
        statuses=state.get(f"{prefix}_status", default_statuses), kinds=state.get(f"{prefix}_kind", []),
        difficulty=state.get(f"{prefix}_difficulty", (1, review_queue.MAX_DIFFICULTY)),
        hops=state.get(f"{prefix}_hops", []), document_ids=state.get(f"{prefix}_document", []),
        run_ids=state.get(f"{prefix}_run", []), engines=state.get(f"{prefix}_engine", []),
        reviewers=state.get(f"{prefix}_reviewer", []), text=state.get(f"{prefix}_text", ""),
        sort=state.get(f"{prefix}_sort", "oldest"),
    )


def filter_widgets(prefix: str, ws: Workspace, default_statuses: list[str], expanded: bool = True) -> TaskFilter:
    """The task filters shared by Review and Export, with keys prefixed per page. The expander's
    label says in one line what is filtered, so the panel can stay collapsed."""
    options, documents = _filter_choices(ws.settings.resolved_database_url, ws)
    summary = review_queue.describe_filter(_filter_in_state(prefix, default_statuses), documents)
    with st.expander(f"Filters: {escape_markdown(summary)}", expanded=expanded, key=f"{prefix}_filters",
                     icon=":material/filter_list:"):
        first, second, third = st.columns(3)
        statuses = first.multiselect("Status", TASK_STATUSES, default=default_statuses, key=f"{prefix}_status")
        kinds = first.multiselect("Kind", TASK_KINDS, key=f"{prefix}_kind")
        low, high = first.slider("Difficulty", 1, review_queue.MAX_DIFFICULTY, (1, review_queue.MAX_DIFFICULTY),
                                 key=f"{prefix}_difficulty")
        hops = second.multiselect("Hops", options.hops, key=f"{prefix}_hops")
        document_ids = second.multiselect("Document", list(documents), format_func=lambda i: documents[i],
                                          key=f"{prefix}_document")
        run_ids = second.multiselect("Run", options.run_ids, key=f"{prefix}_run")
        engines = third.multiselect("Engine", options.engines, key=f"{prefix}_engine")
        reviewers = third.multiselect("Reviewer", options.reviewers, key=f"{prefix}_reviewer")
        text = third.text_input("Search text", key=f"{prefix}_text")
        checks = st.multiselect("Flagged by check", ["any", *CHECK_NAMES], key=f"{prefix}_checks",
                                help="Only tasks an automatic pre-review check flagged ('any': by any check).")
        sort = st.selectbox("Sort", review_queue.SORTS, format_func=review_queue.SORTS.get, key=f"{prefix}_sort")
    return review_queue.build_filter(
        statuses=statuses, kinds=kinds, difficulty=(low, high), hops=hops, document_ids=document_ids,
        run_ids=run_ids, engines=engines, reviewers=reviewers, text=text, sort=sort,
    ).model_copy(update={"checks": checks})
