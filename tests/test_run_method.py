"""Runs executing the real method with the offline engine on the sample corpus: cancel and resume in
the background, every kind with lineage, the explore stage, and the real near-duplicate gate."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.offline.cloze import OFFLINE_MODEL
from taskcraft_core.generate.text import contains_answer
from taskcraft_core.ingest.pipeline import ingest_locations, load_sample_corpus, sample_corpus_path
from taskcraft_core.runs.planning import Pipeline
from taskcraft_core.runs.service import (
    RunRequest,
    cancel_run,
    create_run,
    execute_run,
    method_pipeline,
    resume_run_in_background,
    run_summary,
    start_run_in_background,
)
from taskcraft_core.schema import GenerationRun, Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

pytestmark = pytest.mark.slow


def sample_workspace(home: Path, **settings: Any) -> Workspace:
    workspace = Workspace.open(Settings(home=home, **settings))
    load_sample_corpus(workspace)
    return workspace


def wait_for(
    workspace: Workspace, run_id: str, done: Callable[[GenerationRun], bool], timeout: float = 90
) -> GenerationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = workspace.store.get_run(run_id)
        if run is not None and done(run):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never got there: {workspace.store.get_run(run_id)}")


def has_status(*statuses: str) -> Callable[[GenerationRun], bool]:
    wanted: Collection[str] = statuses
    return lambda run: run.status in wanted


def run_tasks(workspace: Workspace, run: GenerationRun) -> dict[str, Task]:
    return {t.id: t for t in workspace.store.list_tasks(TaskFilter(run_ids=[run.id]), limit=None, with_trajectory=True)}


def test_background_run_cancelled_then_resumed_with_the_offline_engine(tmp_path: Path) -> None:
    # Without the per-document caps, so that the units left after the cancel still have candidates to give.
    workspace = sample_workspace(tmp_path / "home", max_candidates_per_document=100, max_verified_per_document=100)
    first_three = [d.id for d in workspace.store.list_documents()][:3]
    run_id = start_run_in_background(workspace, RunRequest(kinds=["atomic"], engine="offline", concurrency=1,
                                                           document_ids=first_three))
    wait_for(workspace, run_id, lambda run: len(run.done_units) >= 1)
    cancel_run(workspace, run_id)
    stopping = workspace.store.get_run(run_id)
    assert stopping is not None and stopping.status == "cancelled"
    if stopping.finished_at is None:  # still winding down: a resume is refused, and says so
        with pytest.raises(TaskCraftError, match="already executing"):
            resume_run_in_background(workspace, run_id)
    cancelled = wait_for(workspace, run_id, lambda run: run.finished_at is not None)
    assert cancelled.status == "cancelled" and 1 <= len(cancelled.done_units) < 6
    kept = workspace.store.count_tasks()
    assert kept > 0
    resume_run_in_background(workspace, run_id)
    finished = wait_for(workspace, run_id, has_status("completed", "failed"))
    assert (finished.status, finished.error) == ("completed", None) and len(finished.done_units) == 6
    assert workspace.store.count_tasks() == run_summary(finished).model_dump()["candidates"] > kept


def test_an_offline_run_of_every_kind_makes_grounded_tasks_with_lineage_and_costs(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "home")
    # limit 6: atomic spreads it over the documents (one verified task from each of six), which leaves
    # enough tasks for two width groups; explore spreads it over the four guideline families.
    run = execute_run(workspace, create_run(workspace, RunRequest(engine="offline", limit=6, concurrency=1)).id)
    assert run.status == "completed" and run.config.engine == "offline"
    by_kind = run_summary(run).model_dump()["by_kind"]
    assert all(by_kind[kind]["accepted"] >= 2 for kind in ("atomic", "depth", "width", "explore")), by_kind
    assert by_kind["atomic"]["accepted"] == 6
    # ceil(6 / 4) = 2 explore candidates per guideline family
    assert by_kind["explore"]["candidates"] == 8
    tasks = run_tasks(workspace, run)
    assert len(tasks) == run_summary(run).model_dump()["candidates"]
    assert sum(t.model_calls for t in tasks.values()) <= run.model_calls
    assert all(t.engine == "offline" for t in tasks.values())
    for task in (t for t in tasks.values() if t.status == "pending"):
        assert task.model_calls > 0 and task.verification is not None, task.id  # verifying costs calls
        observations = [s.observation or "" for s in task.trajectory if s.type == "tool"]
        answers = task.golden_answer if isinstance(task.golden_answer, list) else [task.golden_answer]
        assert all(any(contains_answer(a, o) for o in observations) for a in answers), task.id
        if task.kind in ("atomic", "explore"):  # grounded in a span of its document, no parents
            document = workspace.store.get_document(task.document_id or "")
            assert document is not None and contains_answer(answers[-1], document.text[task.span_start:task.span_end])
            assert task.parent_ids == []
        else:
            parents = workspace.store.get_tasks(task.parent_ids)
            assert len(parents) == len(task.parent_ids) >= 1
        if task.kind == "width":
            assert task.golden_answer == [p.golden_answer for p in parents]


# ---- the explore stage ------------------------------------------------------------------------


class CancelAtSecondGuideline:
    """The run's engine, except that the task writer's second guideline first cancels the run (as
    the UI would) and waits until the executor has passed the cancel on: by then the unit has
    explored and verified a guideline's tasks, which must not be stored."""

    def __init__(self, engine: Any, cancel: Callable[[], None]) -> None:
        self.engine, self.cancel, self.written = engine, cancel, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def write_explore_tasks(self, *args: Any) -> Any:
        self.written += 1
        if self.written == 2:
            self.cancel()
        return self.engine.write_explore_tasks(*args)


def cancelled_mid_exploration(workspace: Workspace, run: GenerationRun) -> Pipeline:
    real = method_pipeline(workspace, run)

    def new_context(cancel: threading.Event) -> GenerationContext:
        def cancel_and_wait() -> None:
            cancel_run(workspace, run.id)
            assert cancel.wait(timeout=5), "the executor never passed the cancel on"

        context = real.new_context(cancel)
        context.engine = CancelAtSecondGuideline(context.engine, cancel_and_wait)  # type: ignore[assignment]
        return context

    return dataclasses.replace(real, new_context=new_context)


def test_an_explore_run_stores_verified_tasks_and_resumes_after_a_cancel_to_the_same_ids(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "home")
    ada = next(d.id for d in workspace.store.list_documents() if d.title == "Ada Merrow")
    request = RunRequest(kinds=["explore"], engine="offline", concurrency=1)
    run = create_run(workspace, request)
    cancelled = execute_run(workspace, run.id, pipeline=cancelled_mid_exploration)
    # all or nothing: the explore unit was cut short, so it is undone and none of its tasks is stored
    assert (cancelled.status, cancelled.done_units, workspace.store.count_tasks()) == ("cancelled", [], 0)
    assert (cancelled.counts.stage, cancelled.counts.done, cancelled.counts.total) == ("explore", 0, 1)

    resumed = execute_run(workspace, run.id)
    assert (resumed.status, resumed.error) == ("completed", None)
    assert resumed.done_units == [f"explore:{ada}"]  # one start page: the one most pages are reachable from
    assert run_summary(resumed).model_dump()["by_kind"] == {
        "explore": {"candidates": 20, "accepted": 19, "rejected": 1, "duplicates": 0, "present": 0}}
    tasks = run_tasks(workspace, resumed)
    assert {(t.kind, t.engine, t.model, t.run_id) for t in tasks.values()} == {
        ("explore", "offline", OFFLINE_MODEL, run.id)}
    assert Counter(t.relation for t in tasks.values() if t.status == "pending") == {
        "information_retrieval": 5, "navigation": 4, "composition": 5, "repetition": 5}
    assert all(t.verification.agent_score == 2 and t.trajectory for t in tasks.values() if t.status == "pending")

    reference = sample_workspace(tmp_path / "reference")
    uninterrupted = execute_run(reference, create_run(reference, request).id)
    expected = run_tasks(reference, uninterrupted)
    assert {i: t.status for i, t in tasks.items()} == {i: t.status for i, t in expected.items()}
    # The offline explorer costs no calls; each verification counts its (offline) calls on its task.
    # The cut-short attempt had verified the retrieval tasks: what it spent stays counted on the run.
    assert uninterrupted.model_calls == sum(t.model_calls for t in tasks.values()) > 0
    assert resumed.model_calls == uninterrupted.model_calls + sum(
        t.model_calls for t in tasks.values() if t.relation == "information_retrieval")


# ---- the real near-duplicate gate in a run ----------------------------------------------------


@pytest.mark.parametrize("action", ["flag", "skip"])
def test_the_real_gate_catches_a_restated_document_in_an_offline_run(tmp_path: Path, action: str) -> None:
    """A second copy of a document with one word changed has a new hash, so new chunks and new task
    ids, but its questions restate the first copy's: each is gated as a near-duplicate of its twin."""
    # Every candidate of the document, not the per-document share a run takes by default (10 verified).
    workspace = Workspace.open(Settings(home=tmp_path / "home", duplicate_action=action,
                                        max_candidates_per_document=100, max_verified_per_document=100))
    original = sample_corpus_path() / "rv_storm_petrel.md"
    restated = tmp_path / "petrel_restated.md"
    restated.write_text(original.read_text().replace("a small seabird", "a little seabird"))
    ingest_locations([str(original)], workspace)
    first = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], engine="offline")).id)
    [copy_id] = ingest_locations([str(restated)], workspace).document_ids
    second = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], engine="offline",
                                                                     document_ids=[copy_id])).id)

    first_tasks, second_tasks = run_tasks(workspace, first), run_tasks(workspace, second)
    verified = run_summary(first).model_dump()["by_kind"]["atomic"]["accepted"]
    assert verified == len(first_tasks) > 20 and not set(first_tasks) & set(second_tasks)
    assert run_summary(first).model_dump()["by_kind"]["atomic"]["duplicates"] == 0
    twins = {(t.question, t.golden_answer): t.id for t in first_tasks.values()}
    prefix, status = (("possible near-duplicate of ", "pending") if action == "flag"
                      else ("near-duplicate of ", "duplicate"))
    expected = {t.id: (status, prefix + twins[(t.question.replace("a little seabird", "a small seabird"),
                                                t.golden_answer)])
                for t in second_tasks.values()}
    assert {t.id: (t.status, t.failure_reason) for t in second_tasks.values()} == expected
    assert sum("a little seabird" in t.question for t in second_tasks.values()) == 1  # the changed sentence too
    accepted = verified if action == "flag" else 0
    assert run_summary(second).model_dump()["by_kind"] == {"atomic": {
        "candidates": verified, "accepted": accepted, "rejected": verified - accepted, "duplicates": verified,
        "present": 0}}
