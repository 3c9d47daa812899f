"""TaskCraft Studio: `streamlit run app.py`.

The router and the shared frame: navigation, the data home and the active engine in the sidebar,
optional login. Every screen lives in `pages/` and only calls `taskcraft_core`.
"""

from __future__ import annotations

import streamlit as st

from pages._common import engine_label, secrets_section, workspace

st.set_page_config(page_title="TaskCraft Studio", page_icon=":material/construction:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:"),
    st.Page("pages/generate.py", title="Generate", icon=":material/play_circle:"),
    st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
    st.Page("pages/insights.py", title="Insights", icon=":material/insights:"),
    st.Page("pages/duplicates.py", title="Duplicates", icon=":material/content_copy:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]


def sidebar() -> None:
    settings = workspace().settings
    with st.sidebar:
        st.caption("Data home")
        st.text(str(settings.home.resolve()))
        st.caption("Engine")
        st.text(engine_label(settings))
        if secrets_section("auth"):
            login_controls()


def login_controls() -> None:
    """Shown only when an identity provider is configured in secrets ([auth])."""
    if st.user.is_logged_in:
        st.text(f"Signed in as {st.user.get('name') or st.user.get('email')}")
        if st.button("Log out", key="logout"):
            st.logout()
    elif st.button("Log in", key="login"):
        st.login()


sidebar()
st.navigation(PAGES).run()
