"""Insights tables from a real store: funnel, yield, tool usage, reviewer throughput and agreement."""

from __future__ import annotations

from datetime import UTC, datetime

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
    store.record_review("t2", "ana", "accept", check_conflict=False)
    store.record_review("t2", "ben", "accept", check_conflict=False)
    store.record_review("t4", "ana", "accept", check_conflict=False)
    store.record_review("t4", "ben", "accept", check_conflict=False)
    store.record_review("t4", "ben", "undo", check_conflict=False)  # takes back ben's accept
    store.record_review("t4", "ben", "reject", reason="wrong", check_conflict=False)
    store.record_review("t1", "cleo", "accept", check_conflict=False)
    table = insights.reviewer_agreement(store.standing_reviews())
    assert table.to_dict("records") == [
        {"reviewer_a": "ana", "reviewer_b": "ben", "shared_tasks": 2, "agreed": 1, "agreement": 0.5},
    ]


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
    assert insights.reviewer_agreement(store.standing_reviews()).empty and insights.reviewer_throughput([]).empty
    assert insights.tool_usage({}, []).empty


def test_data_version_changes_with_tasks_and_reviews(store: Store) -> None:
    before = store.data_version()
    seeded(store)
    added = store.data_version()
    store.record_review("t1", "ana", "reject", check_conflict=False)
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
