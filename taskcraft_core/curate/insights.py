"""Distributions of a dataset as tables and plotly figures, from cheap store queries.

The tables (pandas) are what tests check; the figures only draw them. Reads are column-only
(`task_columns`, `tool_step_counts`, `all_reviews`, `all_votes`), so a 36,000-task store stays
quick. Agreement between reviewers comes from well-kept libraries: Cohen's kappa per pair from
scikit-learn, Krippendorff's alpha (nominal) overall from `krippendorff`.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from taskcraft_core.schema import Review
from taskcraft_core.store import Store, TaskFilter

TASK_COLUMNS = ["id", "status", "kind", "difficulty", "hops", "width", "document_id"]
FUNNEL_STAGES = ("candidates", "verified", "accepted")
SESSION_BREAK_S = 15 * 60  # a longer pause between two decisions is a break, not reviewing time


def task_table(store: Store, task_filter: TaskFilter | None = None) -> pd.DataFrame:
    return pd.DataFrame(store.task_columns(TASK_COLUMNS, task_filter), columns=TASK_COLUMNS)


# ---- tables ------------------------------------------------------------------------------------


def status_counts(tasks: pd.DataFrame) -> dict[str, int]:
    return {str(status): int(n) for status, n in tasks["status"].value_counts().items()}


def status_totals(counts: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Tasks per status from `store.task_counts()` ((status, kind) -> n)."""
    totals: dict[str, int] = defaultdict(int)
    for (status, _kind), n in counts.items():
        totals[status] += n
    return dict(totals)


def status_kind_table(counts: Mapping[tuple[str, str], int]) -> pd.DataFrame:
    """Statuses as rows, kinds as columns, with totals: the dashboard's count table."""
    rows = [{"status": status, "kind": kind, "tasks": n} for (status, kind), n in counts.items()]
    table = pd.DataFrame(rows, columns=["status", "kind", "tasks"])
    pivot = table.pivot_table(index="status", columns="kind", values="tasks", aggfunc="sum", fill_value=0)
    return pivot.assign(total=pivot.sum(axis=1)).reset_index()


def funnel_counts(by_status: Mapping[str, int]) -> dict[str, int]:
    """Candidates (every generated task) -> verified (passed verification) -> accepted by a person."""
    total = sum(by_status.values())
    return {
        "candidates": total,
        "verified": total - by_status.get("failed_verification", 0),
        "accepted": by_status.get("accepted", 0),
    }


def yield_per_document(tasks: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    """Per document: candidates, verified and accepted tasks, best yield first."""
    columns = ["document", "candidates", "verified", "accepted"]
    if tasks.empty:
        return pd.DataFrame(columns=columns)
    grouped = tasks.assign(
        document=tasks["document_id"].map(lambda i: titles.get(i, i or "(no document)")),
        verified=tasks["status"] != "failed_verification",
        accepted=tasks["status"] == "accepted",
    ).groupby("document").agg(candidates=("id", "size"), verified=("verified", "sum"), accepted=("accepted", "sum"))
    table = grouped.reset_index().astype({"verified": int, "accepted": int})
    return table.sort_values(["accepted", "candidates", "document"], ascending=[False, False, True])[columns] \
        .reset_index(drop=True)


def tool_usage(counts: dict[str, dict[str, int]], task_ids: Sequence[str]) -> pd.DataFrame:
    """One row per task: how many calls of each tool its trajectory made (0 when none)."""
    tools = sorted({tool for per_task in counts.values() for tool in per_task})
    rows = [{"task_id": i, **{tool: counts.get(i, {}).get(tool, 0) for tool in tools}} for i in task_ids]
    table = pd.DataFrame(rows, columns=["task_id", *tools])
    table["total"] = table[tools].sum(axis=1) if tools else 0
    return table


def reviewer_agreement(votes: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Per pair of reviewers who decided the same tasks: shared tasks, how often they agreed, and
    Cohen's kappa (scikit-learn; None when undefined, e.g. both always chose the same decision).
    `votes` is `store.all_votes()`: task -> reviewer -> their decision in force."""
    from sklearn.metrics import cohen_kappa_score  # scikit-learn loads in ~1 s: only where agreement is shown

    pairs: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for decisions in votes.values():
        for a, b in combinations(sorted(decisions), 2):
            pairs[(a, b)][0].append(decisions[a])
            pairs[(a, b)][1].append(decisions[b])
    rows = []
    for (a, b), (first, second) in sorted(pairs.items()):
        agreed = sum(x == y for x, y in zip(first, second, strict=True))
        with warnings.catch_warnings():  # an undefined kappa is reported as None, not warned about
            warnings.simplefilter("ignore")
            kappa = float(cohen_kappa_score(first, second))
        rows.append({"reviewer_a": a, "reviewer_b": b, "shared_tasks": len(first), "agreed": agreed,
                     "agreement": agreed / len(first), "kappa": None if math.isnan(kappa) else kappa})
    return pd.DataFrame(rows, columns=["reviewer_a", "reviewer_b", "shared_tasks", "agreed", "agreement", "kappa"])


def overall_agreement(votes: Mapping[str, Mapping[str, str]]) -> tuple[float | None, int]:
    """Krippendorff's alpha (nominal) over every task two or more reviewers decided, and how many
    such tasks there are; alpha is None when it is undefined (fewer than two tasks, one decision only)."""
    import krippendorff
    import numpy as np

    shared = {task_id: decisions for task_id, decisions in votes.items() if len(decisions) >= 2}
    reviewers = sorted({reviewer for decisions in shared.values() for reviewer in decisions})
    codes = {decision: code for code, decision in enumerate(sorted({d for ds in shared.values() for d in ds.values()}))}
    if len(shared) < 2 or len(codes) < 2:
        return None, len(shared)
    data = np.full((len(reviewers), len(shared)), np.nan)
    for column, decisions in enumerate(shared.values()):
        for reviewer, decision in decisions.items():
            data[reviewers.index(reviewer), column] = codes[decision]
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")), len(shared)


def reviewer_table(votes: Mapping[str, Mapping[str, str]], reviews: Sequence[Review],
                   break_s: float = SESSION_BREAK_S) -> pd.DataFrame:
    """Per reviewer: tasks decided (decisions in force), accept rate among them, and speed: the median
    time between their consecutive decisions, pauses longer than `break_s` left out."""
    columns = ["reviewer", "tasks_decided", "accept_rate", "median_seconds_per_decision"]
    decided: dict[str, list[str]] = defaultdict(list)
    for decisions in votes.values():
        for reviewer, decision in decisions.items():
            decided[reviewer].append(decision)
    times: dict[str, list[float]] = defaultdict(list)
    for review in sorted(reviews, key=lambda r: r.created_at):
        if review.decision != "undo":
            times[review.reviewer].append(review.created_at.timestamp())
    rows = []
    for reviewer in sorted(decided.keys() | times.keys()):
        gaps = [b - a for a, b in zip(times[reviewer], times[reviewer][1:], strict=False) if b - a <= break_s]
        mine = decided[reviewer]
        rows.append({"reviewer": reviewer, "tasks_decided": len(mine),
                     "accept_rate": mine.count("accept") / len(mine) if mine else None,
                     "median_seconds_per_decision": statistics.median(gaps) if gaps else None})
    return pd.DataFrame(rows, columns=columns)


def reviewer_throughput(reviews: Sequence[Review]) -> pd.DataFrame:
    """Decisions (undos excluded) per reviewer per day."""
    rows = [{"reviewer": r.reviewer, "day": r.created_at.date().isoformat(), "decision": r.decision}
            for r in reviews if r.decision != "undo"]
    table = pd.DataFrame(rows, columns=["reviewer", "day", "decision"])
    return table.groupby(["reviewer", "day"]).size().reset_index(name="decisions")


# ---- figures -----------------------------------------------------------------------------------


def difficulty_figure(tasks: pd.DataFrame, by: str) -> go.Figure:
    counts = tasks.groupby(["difficulty", by]).size().reset_index(name="tasks")
    return px.bar(counts, x="difficulty", y="tasks", color=by, title=f"Difficulty by {by}")


def histogram_figure(tasks: pd.DataFrame, column: str) -> go.Figure:
    counts = tasks.groupby(column).size().reset_index(name="tasks")
    return px.bar(counts, x=column, y="tasks", title=f"Tasks by {column}")


def funnel_figure(counts: dict[str, int]) -> go.Figure:
    figure = go.Figure(go.Funnel(y=list(counts), x=list(counts.values()), textinfo="value+percent initial"))
    return figure.update_layout(title="Funnel")


def tool_usage_figure(usage: pd.DataFrame) -> go.Figure:
    per_task = usage.groupby("total").size().reset_index(name="tasks")
    return px.bar(per_task, x="total", y="tasks", title="Tool calls per task",
                  labels={"total": "tool calls in the trajectory"})


def tool_totals_figure(usage: pd.DataFrame) -> go.Figure:
    tools = [c for c in usage.columns if c not in ("task_id", "total")]
    totals = pd.DataFrame({"tool": tools, "calls": [int(usage[c].sum()) for c in tools]})
    return px.bar(totals, x="tool", y="calls", title="Calls per tool")


def yield_figure(table: pd.DataFrame) -> go.Figure:
    long = table.melt(id_vars="document", value_vars=list(FUNNEL_STAGES), var_name="stage", value_name="tasks")
    return px.bar(long, x="document", y="tasks", color="stage", barmode="group", title="Yield per document")


def throughput_figure(table: pd.DataFrame) -> go.Figure:
    return px.bar(table, x="day", y="decisions", color="reviewer", title="Reviewer throughput")


def agreement_figure(table: pd.DataFrame) -> go.Figure:
    labels = table["reviewer_a"] + " & " + table["reviewer_b"]
    return px.bar(table.assign(pair=labels), x="pair", y="kappa", hover_data=["shared_tasks", "agreed", "agreement"],
                  range_y=[-1, 1], title="Agreement between reviewers (Cohen's kappa)")
