"""The database and the index stay consistent under faults: a deleted or emptied index is rebuilt
before a run searches it, failures it caused do not stick, a document whose vectors failed is never
present while incomplete, and a run counts what it stored (issue 16, items 1, 3 and 5)."""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import pytest
from chromadb.api.shared_system_client import SharedSystemClient

from taskcraft_core.cli import main
from taskcraft_core.errors import EnvironmentFailure
from taskcraft_core.index.consistency import check_index, ensure_index
from taskcraft_core.index.vectors import CHUNKS, TASKS, VectorIndex
from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.runs.executor import Pipeline
from taskcraft_core.runs.service import RunRequest, create_run, execute_run, method_pipeline, run_summary
from taskcraft_core.schema import GenerationRun
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace, open_workspace
from tests.test_run_method import sample_workspace

ADA = "Ada Merrow"
TIMELINE = "A Timeline of Kestrel Haven Science"


def titled(workspace: Workspace, *titles: str) -> list[str]:
    by_title = {summary.title: summary.id for summary in workspace.store.list_documents()}
    return [by_title[title] for title in titles]


def outcomes(workspace: Workspace) -> dict[str, tuple[str, str | None]]:
    """Every stored task's status and failure reason, by id (ids are content-derived)."""
    return {task.id: (task.status, task.failure_reason) for task in workspace.store.list_tasks(limit=None)}


def atomic_run(workspace: Workspace, *titles: str, **kwargs: object) -> GenerationRun:
    request = RunRequest(kinds=["atomic"], engine="offline", document_ids=titled(workspace, *titles))
    return execute_run(workspace, create_run(workspace, request).id, **kwargs)  # type: ignore[arg-type]


def empty_chunk_index(workspace: Workspace) -> None:
    collection = workspace.index.collection(CHUNKS)
    collection.delete(ids=collection.get(include=[])["ids"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str | None]]:
    """What an atomic run over two documents stores with a healthy index."""
    workspace = sample_workspace(tmp_path_factory.mktemp("reference"))
    atomic_run(workspace, ADA, TIMELINE)
    found = outcomes(workspace)
    assert sum(status == "pending" for status, _ in found.values()) > 10
    return found


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_generate_rebuilds_a_deleted_or_emptied_index_first_and_stores_what_a_healthy_run_does(
    tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    reference: dict[str, tuple[str, str | None]],
) -> None:
    home = tmp_path / "home"
    workspace = sample_workspace(home)
    documents = titled(workspace, ADA, TIMELINE)
    chunks = workspace.store.ready_chunk_count()
    if damage == "deleted":  # a restored backup without its chroma folder; this process forgets it too
        shutil.rmtree(home / "chroma")
        SharedSystemClient.clear_system_cache()
    else:
        empty_chunk_index(workspace)
    monkeypatch.setenv("TASKCRAFT_HOME", str(home))
    with caplog.at_level(logging.WARNING, logger="taskcraft_core.index.consistency"):
        assert main(["generate", "--engine", "offline", "--kinds", "atomic", "--documents", *documents,
                     "--json"]) == 0
    assert f"the corpus_chunks index does not match the database (0 of {chunks} entries" in caplog.text
    reopened = Workspace.open(Settings(home=home))
    assert outcomes(reopened) == reference
    assert all(check.in_step for check in check_index(reopened))


def test_failures_caused_by_an_emptied_index_do_not_stick_when_the_next_run_verifies_them(
    tmp_path: Path, reference: dict[str, tuple[str, str | None]],
) -> None:
    workspace = sample_workspace(tmp_path / "home")

    def index_lost_after_the_check(ws: Workspace, run: GenerationRun) -> Pipeline:
        empty_chunk_index(ws)  # as before the check existed, or an index removed while the run starts
        return method_pipeline(ws, run)

    broken = atomic_run(workspace, ADA, TIMELINE, pipeline=index_lost_after_the_check)
    assert set(outcomes(workspace)) == set(reference)
    assert {status for status, _ in outcomes(workspace).values()} == {"failed_verification"}
    assert run_summary(broken).candidates == len(reference)

    repaired = atomic_run(workspace, ADA, TIMELINE)

    assert outcomes(workspace) == reference
    verified = sum(status == "pending" for status, _ in reference.values())
    summary = run_summary(repaired)
    # It stored (and carries) the candidates it verified; the genuine failures it met were present.
    assert summary.candidates == summary.accepted == verified
    assert workspace.store.count_tasks(TaskFilter(run_ids=[repaired.id])) == verified
    assert summary.already_present == len(reference) - verified
    assert all(check.in_step for check in check_index(workspace))


def test_a_reviewed_failure_is_a_decision_and_is_not_replaced(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "home")
    atomic_run(workspace, ADA, pipeline=lambda ws, run: (empty_chunk_index(ws), method_pipeline(ws, run))[1])
    [decided, *_] = workspace.store.list_task_ids()
    workspace.store.record_review(decided, "ana", "reject", reason="wrong source", expected_latest=None)
    atomic_run(workspace, ADA)
    task = workspace.store.get_task(decided)
    assert task is not None and task.status == "rejected"
    assert [review.reviewer for review in workspace.store.reviews_for(decided)] == ["ana"]


def test_a_second_run_over_the_same_documents_counts_what_it_stored_and_what_was_present(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "home")
    first = atomic_run(workspace, ADA)
    second = atomic_run(workspace, ADA)
    stored_first = workspace.store.count_tasks(TaskFilter(run_ids=[first.id]))
    assert run_summary(first).candidates == stored_first > 5
    assert run_summary(first).already_present == 0
    summary = run_summary(second)
    assert (summary.candidates, summary.accepted, summary.rejected) == (0, 0, 0)
    assert workspace.store.count_tasks(TaskFilter(run_ids=[second.id])) == 0
    assert summary.already_present == stored_first
    assert summary.by_kind["atomic"].present == stored_first


def test_the_summary_line_says_how_many_were_already_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = sample_workspace(tmp_path / "home")
    [ada] = titled(workspace, ADA)
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "home"))
    arguments = ["generate", "--engine", "offline", "--kinds", "atomic", "--documents", ada]
    assert main(arguments) == 0
    stored = workspace.store.count_tasks()
    capsys.readouterr()
    assert main(arguments) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert f": 0 candidates stored, 0 verified, 0 rejected, {stored} already present;" in first_line


# ---- a document's rows and vectors are one unit ------------------------------------------------------


def full_disk(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_an_ingest_whose_vectors_fail_is_never_present_and_is_finished_on_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(home=tmp_path / "home")
    workspace = Workspace.open(settings)
    ada = sample_corpus_path() / "ada_merrow.md"
    monkeypatch.setattr(VectorIndex, "add_chunks", full_disk)
    # The cleanup fails as well, as it does on a full disk: the rows stay behind.
    monkeypatch.setattr(Store, "delete_document", full_disk)
    monkeypatch.setattr(Store, "remove_unfinished_document", full_disk)
    with pytest.raises(EnvironmentFailure) as failure:
        ingest_locations([str(ada)], workspace)
    assert failure.value.kind == "disk_full" and "is full" in failure.value.message
    assert workspace.store.list_documents() == []
    monkeypatch.undo()

    reopened = open_workspace(settings)  # the next open finishes the document from its rows

    [summary] = reopened.store.list_documents()
    assert summary.title == ADA and summary.chunk_count == reopened.index.collection(CHUNKS).count() > 0
    assert reopened.store.unfinished_documents() == []
    report = ingest_locations([str(ada)], reopened)
    assert (report.documents_added, report.documents_skipped) == (0, 1)


def test_re_ingesting_after_a_failed_ingest_adds_the_document_instead_of_skipping_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "home"))
    ada = sample_corpus_path() / "ada_merrow.md"
    with monkeypatch.context() as patch:
        patch.setattr(VectorIndex, "add_chunks", full_disk)
        patch.setattr(Store, "delete_document", full_disk)
        patch.setattr(Store, "remove_unfinished_document", full_disk)
        with pytest.raises(EnvironmentFailure):
            ingest_locations([str(ada)], workspace)
    report = ingest_locations([str(ada)], workspace)
    assert (report.documents_added, report.documents_skipped, report.errors) == (1, 0, [])
    [summary] = workspace.store.list_documents()
    assert summary.chunk_count == report.chunks_added == workspace.index.collection(CHUNKS).count()


def test_a_failed_ingest_whose_cleanup_works_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = Workspace.open(Settings(home=tmp_path / "home"))
    monkeypatch.setattr(VectorIndex, "add_chunks", full_disk)
    with pytest.raises(EnvironmentFailure):
        ingest_locations([str(sample_corpus_path() / "ada_merrow.md")], workspace)
    assert workspace.store.list_documents() == [] and workspace.store.unfinished_documents() == []
    assert workspace.index.collection(CHUNKS).count() == 0


# ---- the check itself -------------------------------------------------------------------------------


def test_an_index_from_another_database_with_the_same_counts_is_detected_and_replaced(tmp_path: Path) -> None:
    """A restored backup: counts agree by chance, the ids do not."""
    workspace = Workspace.open(Settings(home=tmp_path / "home"))
    ingest_locations([str(sample_corpus_path() / "ada_merrow.md")], workspace)
    chunks = workspace.store.ready_chunk_count()
    stale_ids = [f"other:{n}" for n in range(chunks)]
    empty_chunk_index(workspace)
    workspace.index.collection(CHUNKS).add(ids=stale_ids, documents=["stale"] * chunks)
    [chunk_check, _] = check_index(workspace)
    assert (chunk_check.expected, chunk_check.indexed, chunk_check.missing_samples) == (chunks, chunks, chunks)
    repair = ensure_index(workspace)
    assert (repair.chunks_indexed, repair.chunks_removed) == (chunks, chunks)
    assert sorted(workspace.index.collection(CHUNKS).get(include=[])["ids"]) == sorted(
        chunk.id for chunk in workspace.store.get_chunks(workspace.store.list_documents()[0].id))


def test_missing_task_vectors_are_restored_and_vectors_of_no_task_removed(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "home")
    atomic_run(workspace, ADA)
    tasks = workspace.store.count_tasks()
    collection = workspace.index.collection(TASKS)
    collection.delete(ids=workspace.store.list_task_ids()[:3])
    collection.add(ids=["gone"], embeddings=[[0.5] * len(collection.get(limit=1, include=["embeddings"])
                                                        ["embeddings"][0])])
    repair = ensure_index(workspace)
    assert (repair.tasks_indexed, repair.tasks_removed) == (3, 1)
    assert collection.count() == tasks and ensure_index(workspace).changed is False
