"""Settings: endpoint, models per role, API key (session memory only), thresholds, test connection;
for admins, the audit log.

Changes live in `st.session_state` for this session; nothing here is written to disk or the
database, so the API key never reaches storage, exports or logs. Saving goes through
`models.endpoint.session_settings`: admins only, the URL guard on a new endpoint, a key that stays
with its endpoint, and an audit entry. The review policy (`reviews_per_task`, `adjudicators`) is
shown, not changed: every reviewer's session, the CLI and the workers must count decisions the
same way, which a change kept in one session would break; it is set in the environment or secrets.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app_pages._common import (
    SETTINGS_OVERRIDES,
    current_settings,
    engine_label,
    escape_markdown,
    may,
    secrets_section,
    user_errors,
    workspace,
)
from taskcraft_core.models import chat as llm
from taskcraft_core.models.endpoint import session_settings
from taskcraft_core.settings import ENV_FIELDS, Settings
from taskcraft_core.workspace import settings_from_environment

ENGINES = ("auto", "offline", "openai")
DUPLICATE_ACTIONS = {"flag": "Flag it and keep it in the review queue", "skip": "Skip it (status duplicate)"}


def settings_form(settings: Settings) -> dict[str, Any] | None:
    """The form; returns the overrides when saved."""
    with st.form("settings_form"):
        st.subheader("Model endpoint")
        engine = st.selectbox("Engine", ENGINES, index=ENGINES.index(settings.engine), key="settings_engine",
                              help="auto: the OpenAI-compatible endpoint when one is configured, else offline.")
        base_url = st.text_input("Endpoint (base URL)", value=settings.openai_base_url or "", key="settings_base_url",
                                 placeholder="https://api.openai.com/v1 or http://localhost:8000/v1")
        api_key = st.text_input("API key", type="password", key="settings_api_key",
                                help="Kept in this session's memory only; leave empty to keep the current one.")
        model = st.text_input("Default model", value=settings.model, key="settings_model")
        roles = st.columns(3)
        role_models = {
            role: column.text_input(f"{role.capitalize()} model", value=getattr(settings, f"{role}_model") or "",
                                    key=f"settings_{role}_model", placeholder="default model")
            for column, role in zip(roles, ("generation", "solver", "judge"), strict=False)
        }
        st.subheader("Thresholds")
        first, second = st.columns(2)
        threshold = first.slider("Duplicate threshold (cosine)", 0.5, 1.0, settings.duplicate_threshold, 0.01,
                                 key="settings_duplicate_threshold")
        max_hops = first.number_input("Max hops", 1, 6, settings.max_hops, key="settings_max_hops")
        judge_votes = second.number_input("Judge votes", 1, 5, settings.judge_votes, key="settings_judge_votes")
        concurrency = second.number_input("Concurrency", 1, 64, settings.concurrency, key="settings_concurrency")
        st.subheader("Near-duplicates")
        action = st.radio("A new candidate like an accepted or pending task", list(DUPLICATE_ACTIONS),
                          index=list(DUPLICATE_ACTIONS).index(settings.duplicate_action),
                          format_func=DUPLICATE_ACTIONS.get, key="settings_duplicate_action", horizontal=True)
        ratios = st.columns(3)
        rules = {
            name: column.number_input(label, low, high, float(getattr(settings, name)), step,
                                      key=f"settings_{name}", help=Settings.model_fields[name].description)
            for column, (name, label, low, high, step) in zip(ratios, (
                ("near_exact_ratio", "Light edit from (edit similarity)", 0.0, 1.0, 0.01),
                ("answer_match_ratio", "Same answer from (token-set score)", 0.0, 100.0, 1.0),
                ("name_match_ratio", "Same name from (spelling score)", 0.0, 100.0, 1.0),
            ), strict=False)
        }
        allow_private = may("private_urls") and st.checkbox(
            "The endpoint may be on a private address (localhost, LAN)", key="settings_allow_private_endpoint",
            value=settings.allow_private_urls, help="A model server on this machine or your network.")
        if not st.form_submit_button("Save settings", type="primary"):
            return None
    overrides = {
        "engine": engine, "openai_base_url": base_url.strip() or None, "model": model.strip(),
        **{f"{role}_model": name.strip() or None for role, name in role_models.items()},
        "duplicate_threshold": threshold, "max_hops": int(max_hops), "judge_votes": int(judge_votes),
        "concurrency": int(concurrency), "duplicate_action": action, **rules,
    }
    previous_key = st.session_state.get(SETTINGS_OVERRIDES, {}).get("openai_api_key")
    with user_errors():
        return session_settings(workspace(), overrides, api_key=api_key, previous_key=previous_key,
                                allow_private_endpoint=allow_private)
    return None


def setting_source(name: str) -> str:
    """Where a setting's value comes from: the secrets' [taskcraft] section wins over the environment."""
    if name in secrets_section("taskcraft"):
        return "`[taskcraft]` in `.streamlit/secrets.toml`"
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    variable = next((env for env, field in ENV_FIELDS.items() if field == name), None)
    if variable and getattr(settings_from_environment(), name) != default:
        return f"the environment (`{variable}`)"
    return "the default"


def review_policy(settings: Settings) -> None:
    """How many reviewers decide a task and who settles disagreements: shown with where each is set."""
    st.subheader("Reviewing")
    needed, settlers = st.columns(2)
    needed.metric("Reviews per task", settings.reviews_per_task, border=True,
                  help=Settings.model_fields["reviews_per_task"].description)
    needed.caption(f"From {setting_source('reviews_per_task')}. "
                   + ("The first decision counts." if settings.reviews_per_task == 1 else
                      f"A task is final when {settings.reviews_per_task} reviewers agree; "
                      "disagreements go to the Adjudicate queue."))
    names = ", ".join(settings.adjudicators) or "none named"
    settlers.markdown(f"**Adjudicators** (besides admins): {escape_markdown(names)}",
                      help=Settings.model_fields["adjudicators"].description)
    settlers.caption(f"From {setting_source('adjudicators')}.")
    st.caption("Set for everyone, not per session: every reviewer's queue, the CLI and the workers must count "
               "decisions alike. In the environment of the studio, the CLI and the workers "
               "(`TASKCRAFT_REVIEWS_PER_TASK=2`, `TASKCRAFT_ADJUDICATORS=ana@example.org,ben`), or for the studio "
               "alone in `.streamlit/secrets.toml`:")
    st.code('[taskcraft]\nreviews_per_task = 2\nadjudicators = ["ana@example.org", "ben"]', language="toml")


def audit_log() -> None:
    """The newest audited actions, for admins."""
    st.subheader("Audit log")
    entries = workspace().store.list_audit(limit=500)
    if not entries:
        st.caption("Nothing audited yet.")
        return
    st.dataframe([{"at": entry.at, "who": entry.actor, "role": entry.role, "action": entry.action,
                   "target": entry.target, "details": json.dumps(entry.details, default=str)} for entry in entries],
                 hide_index=True)


st.title("Settings")
if not may("settings"):
    st.info(f"Settings are for admins (you are a {workspace().principal.role}).")
    st.stop()
saved = settings_form(current_settings())
if saved is not None:
    st.session_state[SETTINGS_OVERRIDES] = saved
    st.rerun()  # the sidebar banner reads the new settings

settings = current_settings()
st.text(f"Active: {engine_label(settings)}")
left, right = st.columns(2)
if left.button("Test connection", key="settings_test_connection"):
    with user_errors(), st.spinner("Asking the endpoint…"):
        st.success(escape_markdown(llm.check_connection(settings)))
if right.button("Reset to environment", key="settings_reset"):
    st.session_state.pop(SETTINGS_OVERRIDES, None)
    st.rerun()
review_policy(settings)
audit_log()
