"""Near-duplicates: exact search, clusters, lexical labels, dismissals, keep-one, the gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taskcraft_core.curate.dedup import (
    DuplicateCluster,
    LexicalRules,
    cosine_pairs,
    different_specifics,
    dismiss_cluster,
    find_near_duplicates,
    find_similar,
    gate_candidate,
    keep_one,
)
from taskcraft_core.errors import ReviewConflict, TaskCraftError
from taskcraft_core.index.task_vectors import rebuild_task_index, task_vectors
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.curation_factory import FIXTURES_PAIRS, QUESTIONS, make_task, question_tasks

THRESHOLD = 0.85


def stored(workspace: Workspace) -> Workspace:
    workspace.store.add_tasks(question_tasks())
    return workspace


def kinds(clusters: list) -> dict[tuple[str, str], str]:
    return {(p.a, p.b): p.kind for c in clusters for p in c.pairs}


def test_copies_edits_and_paraphrases_cluster_and_different_facts_do_not(workspace: Workspace) -> None:
    clusters = find_near_duplicates(stored(workspace), THRESHOLD)
    assert [c.task_ids for c in clusters] == [["t1", "t2", "t3"], ["t5", "t6"]]
    assert kinds(clusters) == {("t1", "t2"): "exact", ("t1", "t3"): "paraphrase", ("t2", "t3"): "paraphrase",
                               ("t5", "t6"): "near_exact"}
    assert clusters[0].max_similarity == 1.0


def test_same_template_with_another_year_and_answer_is_not_a_duplicate(workspace: Workspace) -> None:
    tasks = question_tasks()
    stored(workspace)
    vectors = task_vectors(workspace, tasks)
    candidates = {(tasks[i].id, tasks[j].id) for i, j, _ in cosine_pairs(vectors, THRESHOLD)}
    assert ("t9", "t10") in candidates  # the embeddings alone call them near-identical
    assert all("t9" not in c.task_ids for c in find_near_duplicates(workspace, THRESHOLD))


def test_blockwise_search_finds_exactly_the_brute_force_pairs() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(20, 16))
    vectors = np.concatenate([base, base[:10] + rng.normal(scale=0.2, size=(10, 16))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    full = vectors @ vectors.T
    expected = {(i, j) for i in range(30) for j in range(i + 1, 30) if full[i, j] >= 0.9}
    found = {(i, j) for i, j, _ in cosine_pairs(vectors, 0.9, block_rows=7)}
    assert found == expected and len(expected) >= 10


def test_a_rebuilt_index_gives_the_same_clusters(workspace: Workspace) -> None:
    before = find_near_duplicates(stored(workspace), THRESHOLD)
    assert rebuild_task_index(workspace) == 10
    reopened = Workspace(workspace.settings, workspace.store, VectorIndex.open(workspace.settings))
    assert find_near_duplicates(reopened, THRESHOLD) == before
    reopened.index.clear_tasks()
    assert find_near_duplicates(reopened, THRESHOLD) == before


def test_an_edited_task_is_compared_by_what_it_says_now(workspace: Workspace) -> None:
    find_near_duplicates(stored(workspace), THRESHOLD)
    workspace.store.record_review("t3", "ann", "edit", edits={"question": "When was the Glasgow Hall demolished?"},
                                  override=True)
    clusters = find_near_duplicates(workspace, THRESHOLD)
    assert [c.task_ids for c in clusters] == [["t1", "t2"], ["t5", "t6"]]


def test_not_duplicates_are_remembered(workspace: Workspace) -> None:
    clusters = find_near_duplicates(stored(workspace), THRESHOLD)
    dismiss_cluster(workspace, clusters[1].task_ids, "ann")
    assert [c.task_ids for c in find_near_duplicates(workspace, THRESHOLD)] == [["t1", "t2", "t3"]]
    workspace.store.mark_not_duplicates("t3", "t1", "bob")
    workspace.store.mark_not_duplicates("t2", "t3", "bob")
    assert [c.task_ids for c in find_near_duplicates(workspace, THRESHOLD)] == [["t1", "t2"]]


def keep(workspace: Workspace, cluster: DuplicateCluster, keep_id: str, reviewer: str) -> None:
    keep_one(workspace, cluster.task_ids, keep_id, reviewer, seen_reviews=cluster.latest_review_ids)


def test_keep_one_rejects_the_others_as_duplicates_and_they_leave_the_clusters(workspace: Workspace) -> None:
    clusters = find_near_duplicates(stored(workspace), THRESHOLD)
    keep(workspace, clusters[0], "t3", "ann")
    statuses = {t.id: t.status for t in workspace.store.get_tasks(["t1", "t2", "t3"], with_trajectory=False)}
    assert statuses == {"t1": "rejected", "t2": "rejected", "t3": "pending"}
    assert [(r.decision, r.reason, r.reviewer) for r in workspace.store.reviews_for("t1")] == [
        ("reject", "duplicate of t3", "ann")]
    assert [c.task_ids for c in find_near_duplicates(workspace, THRESHOLD)] == [["t5", "t6"]]
    everything = find_near_duplicates(workspace, THRESHOLD, TaskFilter())
    assert [c.task_ids for c in everything] == [["t1", "t2", "t3"], ["t5", "t6"]]
    with pytest.raises(TaskCraftError, match="not in this cluster"):
        keep(workspace, clusters[1], "t1", "ann")


def test_keep_one_on_a_stale_cluster_changes_nothing_and_names_the_changed_task(workspace: Workspace) -> None:
    [cluster, _] = find_near_duplicates(stored(workspace), THRESHOLD)
    assert cluster.latest_review_ids == {"t1": None, "t2": None, "t3": None}
    workspace.store.record_review("t2", "bob", "accept")  # while ann looks at the cluster
    with pytest.raises(ReviewConflict, match="t2 by bob"):
        keep(workspace, cluster, "t3", "ann")
    statuses = {t.id: t.status for t in workspace.store.get_tasks(["t1", "t2", "t3"], with_trajectory=False)}
    assert statuses == {"t1": "pending", "t2": "accepted", "t3": "pending"}
    assert workspace.store.reviews_for("t1") == []
    [fresh, _] = find_near_duplicates(workspace, THRESHOLD)
    assert fresh.latest_review_ids["t2"] == workspace.store.reviews_for("t2")[-1].id
    keep(workspace, fresh, "t2", "ann")
    assert [t.status for t in workspace.store.get_tasks(["t1", "t2", "t3"])] == ["rejected", "accepted", "rejected"]


def test_lexical_cut_offs_come_from_the_settings(workspace: Workspace) -> None:
    stored(workspace).store.add_tasks([make_task("t11", QUESTIONS[0][1], "Alistair Munro")])
    assert [c.task_ids for c in find_near_duplicates(workspace, THRESHOLD)][0] == ["t1", "t2", "t3"]
    loose_rules = workspace.settings.with_changes(near_exact_ratio=0.5, answer_match_ratio=80.0)
    loose = Workspace(loose_rules, workspace.store, workspace.index)
    clusters = find_near_duplicates(loose, THRESHOLD)
    assert [c.task_ids for c in clusters] == [["t1", "t2", "t3", "t11"], ["t5", "t6"]]
    assert kinds(clusters)[("t1", "t3")] == "near_exact"  # a paraphrase at the default 0.90
    a = make_task("a", "What was the inflation rate in Estonia in 2008?", "10.4%")
    b = make_task("b", "What was the Estonian inflation rate in 2008?", "10.4%")
    assert not different_specifics(a, b, LexicalRules.from_settings(workspace.settings))
    assert different_specifics(a, b, LexicalRules.from_settings(workspace.settings.with_changes(name_match_ratio=95)))


def test_the_gate_flags_a_candidate_like_a_pending_or_accepted_task_only(workspace: Workspace) -> None:
    stored(workspace)
    paraphrase = make_task("new1", "According to the 2003 hydrographic survey, what is the maximum depth of "
                                   "Lake Vostrov?", "312 m")
    hit = gate_candidate(workspace, paraphrase, THRESHOLD)
    assert hit is not None and (hit.a, hit.b, hit.kind) == ("t7", "new1", "paraphrase")
    assert hit.cosine >= THRESHOLD
    other_year = make_task("new2", "How many goals did Mirela Dragan score for the national team during the "
                                   "2021 European qualifiers?", "11")
    assert gate_candidate(workspace, other_year, THRESHOLD) is None
    workspace.store.record_review("t7", "ann", "reject", reason="vague", override=True)
    assert gate_candidate(workspace, paraphrase, THRESHOLD) is None


def test_find_similar_ranks_copies_and_paraphrases_first(workspace: Workspace) -> None:
    similar = find_similar(stored(workspace), "t1", k=3)
    assert [task.id for task, _ in similar[:2]] == ["t2", "t3"]
    assert similar[0][1] == pytest.approx(1.0, abs=1e-4)
    assert "t1" not in [task.id for task, _ in similar]
    with pytest.raises(TaskCraftError, match="No task"):
        find_similar(workspace, "missing")


def test_threshold_must_be_a_similarity(workspace: Workspace) -> None:
    with pytest.raises(TaskCraftError, match="out of range"):
        find_near_duplicates(stored(workspace), 1.5)
    assert find_near_duplicates(workspace) == find_near_duplicates(workspace, workspace.settings.duplicate_threshold)


def test_labelled_paraphrase_pairs_are_told_apart(workspace: Workspace) -> None:
    """Precision and recall on the hand-labelled pairs (paraphrases, copies, light edits versus
    same-template hard negatives, same-topic and unrelated questions)."""
    rows = [json.loads(line) for line in FIXTURES_PAIRS.read_text(encoding="utf-8").splitlines()]
    for n, row in enumerate(rows):
        workspace.store.add_tasks([make_task(f"p{n:03d}a", row["a"], row["answer_a"]),
                                   make_task(f"p{n:03d}b", row["b"], row["answer_b"])])
    found = {(p.a, p.b) for c in find_near_duplicates(workspace, THRESHOLD) for p in c.pairs}
    truth = {(f"p{n:03d}a", f"p{n:03d}b") for n, row in enumerate(rows) if row["label"] == "paraphrase"}
    labelled = {(f"p{n:03d}a", f"p{n:03d}b") for n in range(len(rows))}
    predicted = found & labelled
    precision = len(predicted & truth) / len(predicted)
    recall = len(predicted & truth) / len(truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
