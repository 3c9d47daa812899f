"""Settings: endpoint, models per role, API key (session memory only), thresholds, test connection.

Changes live in `st.session_state` for this session; nothing here is written to disk or the
database, so the API key never reaches storage, exports or logs.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages._common import SETTINGS_OVERRIDES, current_settings, engine_label, escape_markdown, user_errors
from taskcraft_core.models import chat as llm
from taskcraft_core.settings import Settings

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
        if not st.form_submit_button("Save settings", type="primary"):
            return None
    overrides = {
        "engine": engine, "openai_base_url": base_url.strip() or None, "model": model.strip(),
        **{f"{role}_model": name.strip() or None for role, name in role_models.items()},
        "duplicate_threshold": threshold, "max_hops": int(max_hops), "judge_votes": int(judge_votes),
        "concurrency": int(concurrency), "duplicate_action": action, **rules,
    }
    previous_key = st.session_state.get(SETTINGS_OVERRIDES, {}).get("openai_api_key")
    overrides["openai_api_key"] = api_key.strip() or previous_key
    return overrides


st.title("Settings")
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
