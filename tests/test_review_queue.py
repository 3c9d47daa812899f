"""The review queue's logic without Streamlit: filters, cards, moving on, evidence, steps, edits."""

from __future__ import annotations

import pytest

from taskcraft_core.curate import review_queue as rq
from taskcraft_core.errors import ReviewConflict
from taskcraft_core.schema import Chunk, Document, Task, TrajectoryStep
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store

ONE_REVIEW = Settings()  # reviews_per_task = 1
TEXT = "Intro line. The observatory opened in 1931 on <Gull Point>. Closing words."


def seed(store: Store, n: int = 3) -> list[Task]:
    store.add_document(Document(id="d1", source="d1.txt", content_hash="h1", title="Doc", doc_type="text", text=TEXT),
                       [Chunk(id="c1", document_id="d1", position=0, text=TEXT, start=0, end=len(TEXT))])
    start = TEXT.index("1931")
    tasks = [Task(id=f"t{i}", kind="atomic", question=f"Question {i}?", golden_answer="1931",
                  content_identifier="Doc", engine="offline", model="offline", document_id="d1", chunk_id="c1",
                  span_start=start, span_end=start + 4, difficulty=i + 1, parent_ids=["t0"] if i else [])
             for i in range(n)]
    store.add_tasks(tasks)
    return tasks


def test_build_filter_full_difficulty_range_means_no_filter() -> None:
    full = rq.build_filter(statuses=["pending"], difficulty=(1, rq.MAX_DIFFICULTY))
    assert full.min_difficulty is None and full.max_difficulty is None and full.statuses == ["pending"]
    narrow = rq.build_filter(difficulty=(2, 3), sort="newest")
    assert (narrow.min_difficulty, narrow.max_difficulty, narrow.sort) == (2, 3, "newest")


def test_card_shows_the_task_at_a_position_with_lineage_and_evidence(store: Store) -> None:
    seed(store)
    queue = rq.build_filter(statuses=["pending"])
    card = rq.load_card(store, queue, 0)
    assert card is not None and (card.task.id, card.position, card.total) == ("t0", 0, 3)
    assert card.child_ids == ["t1", "t2"] and card.parent_ids == [] and card.latest_review_id is None
    assert card.evidence == rq.Evidence(before="Intro line. The observatory opened in ", span="1931",
                                        after=" on <Gull Point>. Closing words.", page=1)
    assert rq.load_card(store, queue, 99).position == 2  # clamped to the last task
    assert rq.load_card(store, queue, 0, pinned_id="t2").position is None
    assert rq.load_card(store, rq.build_filter(statuses=["accepted"]), 0) is None


def test_evidence_html_escapes_text_and_marks_the_span() -> None:
    chunk = Chunk(id="c", document_id="d", position=0, text="a <b>x</b> & y", start=100, end=114)
    evidence = rq.split_evidence(chunk, 103, 106)
    assert evidence.span == "b>x"
    assert evidence.to_html() == '<div style="white-space: pre-wrap">a &lt;<mark>b&gt;x</mark>&lt;/b&gt; &amp; y</div>'
    outside = rq.split_evidence(chunk, 10, 20)
    assert (outside.before, outside.span) == ("a <b>x</b> & y", "")


def test_evidence_window_cuts_long_chunks() -> None:
    text = "x" * 1000 + "SPAN" + "y" * 1000
    chunk = Chunk(id="c", document_id="d", position=0, text=text, start=0, end=len(text))
    evidence = rq.split_evidence(chunk, 1000, 1004, context=10)
    assert (evidence.before, evidence.span, evidence.after) == ("…" + "x" * 10, "SPAN", "y" * 10 + "…")


def test_decided_task_leaving_the_queue_keeps_the_position(store: Store) -> None:
    seed(store)
    pending = rq.build_filter(statuses=["pending"])
    card = rq.load_card(store, pending, 1)
    rq.decide(store, ONE_REVIEW, card, "ana", "accept")
    assert rq.position_after_decision(store, pending, "t1", 1) == 1
    assert rq.load_card(store, pending, 1).task.id == "t2"
    everything = rq.build_filter()
    assert rq.position_after_decision(store, everything, "t1", 1) == 2


def test_stale_card_raises_conflict_and_undo_takes_back(store: Store) -> None:
    seed(store)
    card = rq.load_card(store, rq.build_filter(), 0)
    ben = store.record_review("t0", "ben", "reject", reason="wrong", expected_latest=None)
    with pytest.raises(ReviewConflict):
        rq.decide(store, ONE_REVIEW, card, "ana", "accept")
    assert store.get_task("t0").status == "rejected"
    rq.undo(store, ONE_REVIEW, ben.id, "ben")
    assert store.get_task("t0").status == "pending"


def test_undo_after_someone_else_decided_is_a_conflict_and_their_decision_stands(store: Store) -> None:
    seed(store)
    alice = rq.decide(store, ONE_REVIEW, rq.load_card(store, rq.build_filter(), 0), "alice", "accept")
    bobs_card = rq.load_card(store, rq.build_filter(), 0)
    rq.decide(store, ONE_REVIEW, bobs_card, "bob", "reject", reason="Answer is wrong")
    with pytest.raises(ReviewConflict, match="decided by bob"):
        rq.undo(store, ONE_REVIEW, alice.id, "alice")
    task = store.get_task("t0")
    assert (task.status, [r.decision for r in store.reviews_for("t0")]) == ("rejected", ["accept", "reject"])


def test_step_views_truncate_long_text_and_format_args() -> None:
    steps = [TrajectoryStep(position=0, type="ai", content="think " * 10, tool="search_corpus",
                            args={"query": "ä"}, observation="o" * 50, latency_ms=12.4, tokens=7, hop=1)]
    view = rq.step_views(steps, limit=20)[0]
    assert view.thought == ("think " * 10)[:20] + "…" and view.observation == "o" * 20 + "…" and view.truncated
    assert view.args == '{\n  "query": "ä"\n}'
    assert view.title == "Step 1 · hop 1 · search_corpus · 12 ms · 7 tokens"


def test_edits_keep_only_changed_fields_and_split_width_answers() -> None:
    atomic = Task(id="a", kind="atomic", question="Q?", golden_answer="1931", content_identifier="D",
                  engine="offline", model="m")
    assert rq.edits_from_form(atomic, "Q?", "1931") == {}
    assert rq.edits_from_form(atomic, "New Q?", "1931 ") == {"question": "New Q?"}
    width = atomic.model_copy(update={"golden_answer": ["1", "2"]})
    assert rq.edits_from_form(width, "Q?", "1\n3\n") == {"golden_answer": ["1", "3"]}
    assert rq.reject_reason("Other", "  typo ") == "Other: typo" and rq.reject_reason("Other", "") == "Other"


def test_filter_options_list_distinct_values(store: Store) -> None:
    seed(store)
    store.record_review("t1", "ana", "accept")
    options = rq.filter_options(store)
    assert options == rq.FilterOptions(hops=[1], run_ids=[], engines=["offline"], reviewers=["ana"])


def test_differences_are_marked_on_escaped_text() -> None:
    left, right = rq.highlight_differences("When did <Ada> open it?", "When did <Ada> close it?")
    assert left == "When did &lt;Ada&gt; <mark>open</mark> it?"
    assert right == "When did &lt;Ada&gt; <mark>close</mark> it?"
    assert rq.highlight_differences("same", "same") == ("same", "same")
