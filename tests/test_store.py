"""The database: idempotent inserts, paging and filters in SQL, append-only reviews with conflicts."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from taskcraft_core.errors import ReviewConflict
from taskcraft_core.schema import Chunk, Document, Task, TrajectoryStep, Verification
from taskcraft_core.store import Store, TaskFilter


def make_task(i: int, **changes: object) -> Task:
    values: dict[str, object] = dict(
        id=f"t{i:03d}", kind="atomic", question=f"Question {i}?", golden_answer=str(i),
        content_identifier="Doc", engine="offline", model="offline", difficulty=1 + i % 4,
        trajectory=[TrajectoryStep(position=0, type="human", content=f"Question {i}?"),
                    TrajectoryStep(position=1, type="tool", tool="search_corpus", args={"query": "q"},
                                   observation=f"obs {i}")],
        verification=Verification(model_alone_answer="no idea", agent_answer=str(i), agent_score=2),
    )
    values.update(changes)
    return Task(**values)


def test_schema_is_created_by_the_migration_and_versioned(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert {"documents", "chunks", "tasks", "trajectory_steps", "verifications", "reviews", "runs",
            "alembic_version"} <= names
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_reopening_an_existing_database_keeps_its_data(store: Store) -> None:
    store.add_tasks([make_task(1)])
    assert Store(store.url).count_tasks() == 1


def test_same_document_content_is_stored_once(store: Store) -> None:
    doc = Document(id="d1", source="a.txt", content_hash="abc", title="A", doc_type="text", text="hello")
    chunk = Chunk(id="d1:0", document_id="d1", position=0, text="hello", start=0, end=5)
    assert store.add_document(doc, [chunk]) is True
    assert store.add_document(doc.model_copy(update={"id": "d2", "source": "b.txt"}), [chunk]) is False
    assert [d.chunk_count for d in store.list_documents()] == [1]
    assert store.delete_document("d1") and store.list_documents() == []


def test_tasks_round_trip_with_trajectory_and_verification(store: Store) -> None:
    task = make_task(7, kind="width", golden_answer=["1987", "412 m"], parent_ids=["t001", "t002"])
    assert store.add_tasks([task, task]) == 1
    assert store.add_tasks([task]) == 0
    loaded = store.get_task(task.id)
    assert loaded is not None
    assert loaded.golden_answer == ["1987", "412 m"]
    assert [s.observation for s in loaded.trajectory] == [None, "obs 7"]
    assert loaded.verification == task.verification
    assert store.children_of("t001") == [task.id]


def test_filters_and_paging_happen_in_sql(store: Store) -> None:
    store.add_tasks([make_task(i, kind="depth" if i % 3 == 0 else "atomic") for i in range(30)])
    depth = TaskFilter(kinds=["depth"])
    assert store.count_tasks(depth) == 10
    page = store.list_tasks(depth, offset=5, limit=3)
    assert [t.id for t in page] == ["t015", "t018", "t021"]
    assert store.count_tasks(TaskFilter(min_difficulty=4)) == 7
    assert store.count_tasks(TaskFilter(text="question 2")) == 11
    hardest = store.list_tasks(TaskFilter(sort="difficulty_desc"), limit=1)[0]
    assert hardest.difficulty == 4


def test_reviews_are_appended_and_undo_restores_the_previous_state(store: Store) -> None:
    store.add_tasks([make_task(1)])
    first = store.record_review("t001", "ann", "accept")
    edit = store.record_review("t001", "ann", "edit", edits={"question": "Edited?"}, expected_latest=first.id)
    task = store.get_task("t001")
    assert task is not None and (task.status, task.question) == ("accepted", "Edited?")
    store.record_review("t001", "ann", "undo", expected_latest=edit.id)
    task = store.get_task("t001")
    assert task is not None and (task.status, task.question) == ("accepted", "Question 1?")
    assert [r.decision for r in store.reviews_for("t001")] == ["accept", "edit", "undo"]
    assert store.count_tasks(TaskFilter(reviewers=["ann"])) == 1


def test_two_reviewers_deciding_at_once_get_a_conflict_not_a_lost_update(store: Store) -> None:
    store.add_tasks([make_task(1)])
    seen_by_both = store.get_task("t001")
    assert seen_by_both is not None
    store.record_review("t001", "ann", "accept", expected_latest=None)
    with pytest.raises(ReviewConflict):
        store.record_review("t001", "bob", "reject", reason="wrong", expected_latest=None)
    task = store.get_task("t001")
    assert task is not None and task.status == "accepted"
    assert [r.reviewer for r in store.reviews_for("t001")] == ["ann"]
