"""The database: idempotent inserts, paging and filters in SQL, append-only reviews with conflicts."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.schema import Chunk, Document, Review, Task, TrajectoryStep, Verification
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.store.connection import migration_config


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
        head = ScriptDirectory.from_config(migration_config()).get_current_head()
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_document_titles_map_ids_to_titles_oldest_first(store: Store) -> None:
    for i, title in enumerate(["Zeta report", "Alpha notes"]):
        store.add_document(Document(id=f"d{i}", source=f"{i}.txt", content_hash=f"h{i}", title=title,
                                    doc_type="text", text="x" * 10_000), [])
    assert list(store.document_titles().items()) == [("d0", "Zeta report"), ("d1", "Alpha notes")]


def test_the_migrations_create_exactly_the_tables_module(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from taskcraft_core.store import tables

    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), tables.metadata) == []


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


def test_a_document_is_present_only_once_ready_and_an_unfinished_copy_is_replaced(store: Store) -> None:
    doc = Document(id="d1", source="a.txt", content_hash="abc", title="A", doc_type="text", text="hello")
    chunks = [Chunk(id="d1:0", document_id="d1", position=0, text="hello", start=0, end=5)]
    assert store.add_document(doc, chunks, indexing=True) is True
    assert store.list_documents() == [] and store.ready_chunk_count() == 0
    assert [(d.id, [c.id for c in cs]) for d, cs in store.unfinished_documents()] == [("d1", ["d1:0"])]
    # An ingest of the same content after a failed one starts over instead of skipping it as present.
    assert store.add_document(doc.model_copy(update={"source": "again.txt"}), chunks, indexing=True) is True
    store.mark_document_ready("d1")
    assert [(d.source, d.chunk_count) for d in store.list_documents()] == [("again.txt", 1)]
    assert store.unfinished_documents() == [] and store.ready_chunk_count() == 1
    assert store.remove_unfinished_document("d1") is False  # a ready document is left alone


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


def test_standing_reviews_replay_undos_for_many_tasks_at_once(store: Store) -> None:
    store.add_tasks([make_task(i) for i in (1, 2, 3)])
    accept = store.record_review("t001", "ann", "accept")
    edit = store.record_review("t001", "bob", "edit", edits={"question": "Edited?"}, expected_latest=accept.id)
    store.record_review("t001", "bob", "undo", expected_latest=edit.id)
    reject = store.record_review("t002", "ann", "reject", reason="vague")
    store.record_review("t002", "ann", "undo", expected_latest=reject.id)
    standing = store.standing_reviews(["t001", "t002", "t003"])
    assert {task_id: [r.id for r in reviews] for task_id, reviews in standing.items()} == {
        "t001": [accept.id], "t002": []}
    assert [(r.reviewer, r.decision) for r in store.standing_reviews()["t001"]] == [("ann", "accept")]
    assert store.latest_review_ids(["t001", "t003"]) == {"t001": edit.id + 1, "t003": None}


def test_undo_takes_back_only_the_newest_decision_in_force(store: Store) -> None:
    store.add_tasks([make_task(1), make_task(2)])
    alice = store.record_review("t001", "alice", "accept")
    store.record_review("t001", "bob", "reject", reason="wrong", expected_latest=alice.id)
    with pytest.raises(ReviewConflict, match="decided by bob after your decision"):
        store.undo_review(alice.id, "alice")
    assert store.get_task("t001").status == "rejected"
    assert [r.decision for r in store.reviews_for("t001")] == ["accept", "reject"]

    accept = store.record_review("t002", "ann", "accept")
    edit = store.record_review("t002", "ann", "edit", edits={"question": "Edited?"}, expected_latest=accept.id)
    store.undo_review(edit.id, "ann")
    store.undo_review(accept.id, "ann")  # the same session takes back both, newest first
    task = store.get_task("t002")
    assert (task.status, task.question) == ("pending", "Question 2?")
    with pytest.raises(ReviewConflict, match="already taken back"):
        store.undo_review(accept.id, "ann")
    with pytest.raises(TaskCraftError, match="No review with id 999"):
        store.undo_review(999, "ann")


def test_one_decision_on_several_tasks_lands_whole_or_not_at_all(store: Store) -> None:
    store.add_tasks([make_task(i) for i in (1, 2, 3)])
    seen = store.latest_review_ids(["t001", "t002", "t003"])
    store.record_review("t002", "bob", "accept")
    with pytest.raises(ReviewConflict, match="t002 by bob"):
        store.record_reviews(["t001", "t002"], "ann", "reject", reason="duplicate of t003", expected_latest=seen)
    with pytest.raises(ReviewConflict, match="t002 by bob"):  # the task relied on counts too
        store.record_reviews(["t001", "t003"], "ann", "reject", expected_latest=seen)
    assert store.reviews_for("t001") == [] and store.reviews_for("t003") == []
    reviews = store.record_reviews(["t001", "t003"], "ann", "reject", reason="duplicate of t002",
                                   expected_latest={"t001": None, "t003": None})
    assert [(r.task_id, r.reason) for r in reviews] == [("t001", "duplicate of t002"), ("t003", "duplicate of t002")]
    assert [t.status for t in store.get_tasks(["t001", "t002", "t003"])] == ["rejected", "accepted", "rejected"]


def test_new_tasks_can_arrive_with_a_decision_made_elsewhere(store: Store) -> None:
    decided_at = datetime(2026, 1, 2, 3, 4, 5)
    review = Review(task_id="t001", reviewer="ann", decision="accept", reason="ok", created_at=decided_at)
    edit = Review(task_id="t002", reviewer="bob", decision="edit", edits={"golden_answer": "22"})
    assert store.add_tasks([make_task(1), make_task(2), make_task(3)], [review, edit]) == 3
    assert [(t.status, t.golden_answer) for t in store.get_tasks(["t001", "t002", "t003"])] == [
        ("accepted", "1"), ("pending", "22"), ("pending", "3")]
    [stored] = store.reviews_for("t001")
    assert (stored.reviewer, stored.reason, stored.created_at, stored.supersedes_id) == ("ann", "ok", decided_at, None)
    assert store.count_tasks(TaskFilter(reviewers=["bob"])) == 1
    store.undo_review(stored.id, "ann")  # an imported decision is a decision like any other
    assert store.get_task("t001").status == "pending"
    with pytest.raises(ReviewConflict):
        store.record_review("t002", "ann", "accept", expected_latest=None)


def test_downgrading_the_exploration_migration_keeps_tasks_and_their_reviews(store: Store) -> None:
    from alembic import command
    from sqlalchemy import text

    store.add_tasks([Task(id="t1", kind="atomic", question="Q?", golden_answer="a", content_identifier="X",
                          engine="offline", model="offline")])
    store.record_review("t1", "ana", "accept")
    config = migration_config()
    with store.engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        config.attributes["connection"] = connection
        command.downgrade(config, "0005_task_checks")
        columns = {row[1] for row in connection.execute(text("PRAGMA table_info(tasks)"))}
        reviews = connection.execute(text("SELECT task_id, decision FROM reviews")).all()
    assert "guideline" not in columns and "exploration_steps" not in inspect(store.engine).get_table_names()
    assert [tuple(row) for row in reviews] == [("t1", "accept")]
