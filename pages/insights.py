"""Insights: distributions of the dataset, the funnel, yield per document and reviewer statistics."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages._common import workspace
from taskcraft_core.curate import insights
from taskcraft_core.workspace import Workspace


@st.cache_data(show_spinner=False, max_entries=4)
def dataset_views(database_url: str, version: tuple[int, int, int], _ws: Workspace) -> dict[str, Any]:
    """Tables and figures for one state of the database (the version changes with every task or review)."""
    store = _ws.store
    tasks = insights.task_table(store)
    reviews = store.all_reviews()
    votes = store.all_votes()
    usage = insights.tool_usage(store.tool_step_counts(), list(tasks["id"]))
    titles = {doc.id: doc.title for doc in store.list_documents()}
    funnel = insights.funnel_counts(insights.status_counts(tasks))
    return {
        "funnel": funnel,
        "yield": insights.yield_per_document(tasks, titles),
        "agreement": insights.reviewer_agreement(votes),
        "alpha": insights.overall_agreement(votes),
        "reviewers": insights.reviewer_table(votes, reviews),
        "throughput": insights.reviewer_throughput(reviews),
        "figures": {
            "funnel": insights.funnel_figure(funnel),
            "difficulty_status": insights.difficulty_figure(tasks, "status"),
            "difficulty_kind": insights.difficulty_figure(tasks, "kind"),
            "hops": insights.histogram_figure(tasks, "hops"),
            "width": insights.histogram_figure(tasks, "width"),
            "tools": insights.tool_usage_figure(usage),
            "tool_totals": insights.tool_totals_figure(usage),
        },
    }


st.title("Insights")
ws = workspace()
views = dataset_views(ws.settings.resolved_database_url, ws.store.data_version(), ws)
figures = views["figures"]
if not views["funnel"]["candidates"]:
    st.info("No tasks yet. Generate some on the Generate page.")
    st.stop()

counts = st.columns(3)
for column, (stage, value) in zip(counts, views["funnel"].items(), strict=False):
    column.metric(stage.capitalize(), f"{value:,}")
st.plotly_chart(figures["funnel"], key="chart_funnel")
left, right = st.columns(2)
left.plotly_chart(figures["difficulty_status"], key="chart_difficulty_status")
right.plotly_chart(figures["difficulty_kind"], key="chart_difficulty_kind")
left.plotly_chart(figures["hops"], key="chart_hops")
right.plotly_chart(figures["width"], key="chart_width")
left.plotly_chart(figures["tools"], key="chart_tools")
right.plotly_chart(figures["tool_totals"], key="chart_tool_totals")

st.subheader("Yield per document")
st.plotly_chart(insights.yield_figure(views["yield"]), key="chart_yield")
st.dataframe(views["yield"], hide_index=True)

st.subheader("Reviewers")
if views["throughput"].empty:
    st.caption("No reviews yet.")
else:
    st.dataframe(views["reviewers"], hide_index=True, column_config={
        "accept_rate": st.column_config.NumberColumn("accept rate", format="percent"),
        "median_seconds_per_decision": st.column_config.NumberColumn("median s per decision", format="%.1f")})
    st.plotly_chart(insights.throughput_figure(views["throughput"]), key="chart_throughput")
alpha, shared = views["alpha"]
if views["agreement"].empty:
    st.caption("Agreement appears once two reviewers have decided the same task.")
else:
    shown = "undefined (one decision only, or fewer than two shared tasks)" if alpha is None else f"{alpha:.3f}"
    st.metric(f"Krippendorff's alpha (nominal) over {shared} tasks decided by two or more reviewers", shown)
    st.plotly_chart(insights.agreement_figure(views["agreement"]), key="chart_agreement")
    st.dataframe(views["agreement"], hide_index=True)
