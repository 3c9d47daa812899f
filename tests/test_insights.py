"""Insights tables from a real store: funnel, yield, tool usage, reviewer throughput and agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from taskcraft_core.curate import insights
from taskcraft_core.schema import Chunk, Document, Review, Task, TrajectoryStep
from taskcraft_core.store import Store


def task(task_id: str, status: str, *, document: str | None = "d1", difficulty: int = 1, hops: int = 1,
         width: int = 1, kind: str = "atomic", tools: tuple[str, ...] = ()) -> Task:
    steps = [TrajectoryStep(position=i, type="tool", tool=tool, observation="x") for i, tool in enumerate(tools)]
    return Task(id=task_id, kind=kind, question=f"Q {task_id}?", golden_answer="A", content_identifier="Doc",
                engine="offline", model="offline", status=status, document_id=document, difficulty=difficulty,
                hops=hops, width=width, trajectory=steps)


def seeded(store: Store) -> Store:
    for doc_id, title in (("d1", "Alpha report"), ("d2", "Beta memo")):
        store.add_document(Document(id=doc_id, source=f"{doc_id}.txt", content_hash=doc_id, title=title,
                                    doc_type="text", text="text"),
                           [Chunk(id=f"{doc_id}-0", document_id=doc_id, position=0, text="text", start=0, end=4)])
    store.add_tasks([
        task("t1", "accepted", difficulty=2, tools=("search_corpus", "read_document")),
        task("t2", "pending", difficulty=2, hops=2, kind="depth", tools=("search_corpus",)),
        task("t3", "failed_verification", document="d2"),
        task("t4", "pending", document="d2", width=2, kind="width", difficulty=3,
             tools=("search_corpus", "search_corpus")),
    ])
    return store


def test_funnel_and_yield_per_document(store: Store) -> None:
    tasks = insights.task_table(seeded(store))
    assert insights.funnel_counts(insights.status_counts(tasks)) == {"candidates": 4, "verified": 3, "accepted": 1}
    table = insights.yield_per_document(tasks, {"d1": "Alpha report", "d2": "Beta memo"})
    assert table.to_dict("records") == [
        {"document": "Alpha report", "candidates": 2, "verified": 2, "accepted": 1},
        {"document": "Beta memo", "candidates": 2, "verified": 1, "accepted": 0},
    ]


def test_tool_usage_counts_each_tool_per_task(store: Store) -> None:
    seeded(store)
    usage = insights.tool_usage(store.tool_step_counts(), ["t1", "t2", "t3", "t4"])
    assert usage.to_dict("records") == [
        {"task_id": "t1", "read_document": 1, "search_corpus": 1, "total": 2},
        {"task_id": "t2", "read_document": 0, "search_corpus": 1, "total": 1},
        {"task_id": "t3", "read_document": 0, "search_corpus": 0, "total": 0},
        {"task_id": "t4", "read_document": 0, "search_corpus": 2, "total": 2},
    ]
    figure = insights.tool_usage_figure(usage)
    assert list(figure.data[0].x) == [0, 1, 2] and list(figure.data[0].y) == [1, 1, 2]


def test_agreement_counts_standing_decisions_after_undo(store: Store) -> None:
    seeded(store)
    store.record_review("t2", "ana", "accept", override=True)
    store.record_review("t2", "ben", "accept", override=True)
    store.record_review("t4", "ana", "accept", override=True)
    store.record_review("t4", "ben", "accept", override=True)
    store.record_review("t4", "ben", "undo", override=True)  # takes back ben's accept
    store.record_review("t4", "ben", "reject", reason="wrong", override=True)
    store.record_review("t1", "cleo", "accept", override=True)
    table = insights.reviewer_agreement(store.all_votes())
    assert table.to_dict("records") == [
        {"reviewer_a": "ana", "reviewer_b": "ben", "shared_tasks": 2, "agreed": 1, "agreement": 0.5, "kappa": 0.0},
    ]


# Three reviewers, six tasks (A accept, R reject, - not decided), computed by hand:
#   task:  1 2 3 4 5 6     a&b: 5 shared, 4 agreed, p_e = .8*.6 + .2*.4 = .56, kappa = .24/.44 = 6/11
#   a:     A A R A R A     a&c: 4 shared, 3 agreed, p_e = .5*.25 + .5*.75 = .5, kappa = .25/.5 = 1/2
#   b:     A R R A - A     b&c: 3 shared, 2 agreed, p_e = 2/9 + 2/9 = 4/9,     kappa = (2/9)/(5/9) = 2/5
#   c:     A - R R R -     alpha: coincidences o_AA 6, o_RR 5, o_AR = o_RA = 2, n = 15 (n_A 8, n_R 7);
#                          D_o = 4/15, D_e = 2*8*7/(15*14) = 8/15, alpha = 1 - 1/2 = 1/2
HAND_VOTES = {
    "1": {"a": "accept", "b": "accept", "c": "accept"}, "2": {"a": "accept", "b": "reject"},
    "3": {"a": "reject", "b": "reject", "c": "reject"}, "4": {"a": "accept", "b": "accept", "c": "reject"},
    "5": {"a": "reject", "c": "reject"}, "6": {"a": "accept", "b": "accept"},
}


def test_kappa_per_pair_and_alpha_overall_match_a_hand_computed_example() -> None:
    table = insights.reviewer_agreement(HAND_VOTES)
    assert table[["reviewer_a", "reviewer_b", "shared_tasks", "agreed"]].to_dict("records") == [
        {"reviewer_a": "a", "reviewer_b": "b", "shared_tasks": 5, "agreed": 4},
        {"reviewer_a": "a", "reviewer_b": "c", "shared_tasks": 4, "agreed": 3},
        {"reviewer_a": "b", "reviewer_b": "c", "shared_tasks": 3, "agreed": 2},
    ]
    assert list(table["kappa"]) == pytest.approx([6 / 11, 1 / 2, 2 / 5])
    alpha, shared = insights.overall_agreement(HAND_VOTES)
    assert (alpha, shared) == (pytest.approx(0.5), 6)


def test_agreement_is_undefined_not_a_number_when_everyone_chose_the_same() -> None:
    same = {"1": {"a": "accept", "b": "accept"}, "2": {"a": "accept", "b": "accept"}}
    assert insights.reviewer_agreement(same)["kappa"].tolist() == [None]
    assert insights.overall_agreement(same) == (None, 2)
    assert insights.overall_agreement({}) == (None, 0)


def test_reviewer_table_gives_accept_rate_and_median_speed_without_breaks() -> None:
    start = datetime(2026, 3, 4, 10, tzinfo=UTC)
    at = [0, 30, 50, 50 + 3600, 50 + 3600 + 40]  # a one-hour break after the third decision
    reviews = [Review(id=i, task_id=str(i), reviewer="a", decision="accept", created_at=start + timedelta(seconds=s))
               for i, s in enumerate(at)]
    reviews.append(Review(id=9, task_id="1", reviewer="b", decision="undo", created_at=start))
    table = insights.reviewer_table(HAND_VOTES, reviews)
    assert table[["reviewer", "tasks_decided", "accept_rate"]].to_dict("records") == [
        {"reviewer": "a", "tasks_decided": 6, "accept_rate": 4 / 6},
        {"reviewer": "b", "tasks_decided": 5, "accept_rate": 3 / 5},
        {"reviewer": "c", "tasks_decided": 4, "accept_rate": 1 / 4},
    ]
    speed = table["median_seconds_per_decision"]
    assert speed[0] == 30.0 and speed[1:].isna().all()  # gaps 30, 20, 40 s; b only undid, c has no times


def test_throughput_per_reviewer_and_day_excludes_undo() -> None:
    day = datetime(2026, 3, 4, 10, tzinfo=UTC)
    reviews = [Review(id=i, task_id=f"t{i}", reviewer=name, decision=decision, created_at=day)
               for i, (name, decision) in enumerate([("ana", "accept"), ("ana", "reject"), ("ana", "undo"),
                                                     ("ben", "accept")], start=1)]
    table = insights.reviewer_throughput(reviews)
    assert table.to_dict("records") == [
        {"reviewer": "ana", "day": "2026-03-04", "decisions": 2},
        {"reviewer": "ben", "day": "2026-03-04", "decisions": 1},
    ]


def test_figures_draw_the_distributions(store: Store) -> None:
    tasks = insights.task_table(seeded(store))
    by_status = insights.difficulty_figure(tasks, "status")
    bars = {trace.name: dict(zip(trace.x, trace.y, strict=False)) for trace in by_status.data}
    assert bars == {"accepted": {2: 1}, "failed_verification": {1: 1}, "pending": {2: 1, 3: 1}}
    hops = insights.histogram_figure(tasks, "hops")
    assert dict(zip(hops.data[0].x, hops.data[0].y, strict=False)) == {1: 3, 2: 1}
    funnel = insights.funnel_figure(insights.funnel_counts(insights.status_counts(tasks)))
    assert list(funnel.data[0].x) == [4, 3, 1]


def test_empty_store_gives_empty_tables(store: Store) -> None:
    tasks = insights.task_table(store)
    assert insights.funnel_counts(insights.status_counts(tasks)) == {"candidates": 0, "verified": 0, "accepted": 0}
    assert insights.yield_per_document(tasks, {}).empty
    assert insights.reviewer_agreement(store.all_votes()).empty and insights.reviewer_throughput([]).empty
    assert insights.tool_usage({}, []).empty


def test_data_version_changes_with_tasks_and_reviews(store: Store) -> None:
    before = store.data_version()
    seeded(store)
    added = store.data_version()
    store.record_review("t1", "ana", "reject", override=True)
    assert before == (0, 0, 0) and added == (4, 0, 0) and store.data_version()[1] == 1


def test_dashboard_counts_from_status_kind_pairs(store: Store) -> None:
    counts = seeded(store).task_counts()
    assert insights.status_totals(counts) == {"accepted": 1, "pending": 2, "failed_verification": 1}
    table = insights.status_kind_table(counts)
    assert table.to_dict("records") == [
        {"status": "accepted", "atomic": 1, "depth": 0, "width": 0, "total": 1},
        {"status": "failed_verification", "atomic": 1, "depth": 0, "width": 0, "total": 1},
        {"status": "pending", "atomic": 0, "depth": 1, "width": 1, "total": 2},
    ]
    assert insights.funnel_counts(insights.status_totals(counts)) == {"candidates": 4, "verified": 3, "accepted": 1}
