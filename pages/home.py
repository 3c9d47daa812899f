"""Home: the dataset at a glance, recent runs, the active engine, and a one-click demo."""

from __future__ import annotations

import streamlit as st

from pages._common import engine_label, user_errors, workspace
from taskcraft_core.curate import insights
from taskcraft_core.ingest import pipeline as ingest
from taskcraft_core.runs import service as runs
from taskcraft_core.workspace import Workspace

DEMO_LIMIT = 2  # verified tasks per kind: enough to review, quick on the offline engine


def load_demo(ws: Workspace) -> None:
    """Sample corpus, then a small offline run, with a progress bar; nothing here needs a model."""
    bar = st.progress(0.0, text="Loading the sample corpus…")
    with user_errors():
        ingest.load_sample_corpus(ws)
        run = runs.create_run(ws, runs.RunRequest(engine="offline", limit=DEMO_LIMIT))

        def progress(update: runs.RunProgress) -> None:
            fraction = update.done / update.total if update.total else 0.0
            bar.progress(fraction, text=f"Generating: {update.stage} · {update.done}/{update.total}")

        finished = runs.execute_run(ws, run.id, progress)
        summary = runs.run_summary(finished)
        st.session_state["home_demo"] = f"Demo ready: {summary.accepted} verified tasks from " \
                                        f"{summary.candidates} candidates. Review them on the Review page."
        st.rerun()


st.title("TaskCraft Studio")
ws = workspace()
st.text(f"Engine: {engine_label(ws.settings)}")

counts = ws.store.task_counts()
if message := st.session_state.pop("home_demo", None):
    st.success(message)
if not counts:
    st.info("No tasks yet. Load the sample corpus and generate a demo set to see the studio at work.")
if st.button("Load the sample corpus and generate a demo set", key="home_demo_button", type="primary"):
    load_demo(ws)

if counts:
    by_status = insights.status_totals(counts)
    funnel = insights.funnel_counts(by_status)
    metrics = st.columns(len(funnel) + 1)
    for column, (stage, value) in zip(metrics, funnel.items(), strict=False):
        column.metric(stage.capitalize(), f"{value:,}")
    metrics[-1].metric("Pending review", f"{by_status.get('pending', 0):,}")
    left, right = st.columns(2)
    left.dataframe(insights.status_kind_table(counts), hide_index=True)
    right.plotly_chart(insights.funnel_figure(funnel), key="home_funnel")

st.subheader("Recent runs")
recent = ws.store.list_runs(limit=5)
if recent:
    rows = [
        {
            "run": run.id,
            "status": run.status,
            "started": run.started_at,
            **{
                key: value
                for key, value in runs.run_summary(run).model_dump().items()
                if key in ("candidates", "accepted")
            },
        }
        for run in recent
    ]
    st.dataframe(rows, hide_index=True,
                 column_config={"accepted": "verified"})
else:
    st.caption("No runs yet.")
