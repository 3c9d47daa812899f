"""Generation runs with scripted work functions: stages, limit, errors, cancel, crash and resume.
Runs of the real method on the sample corpus are in test_run_method.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from taskcraft_core.errors import ModelUnavailableError, TaskCraftError
from taskcraft_core.generate.prompts import PROMPT_VERSION
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.models.chat import Usage
from taskcraft_core.runs.planning import Pipeline
from taskcraft_core.runs.service import (
    RunRequest,
    cancel_run,
    create_run,
    execute_run,
    interrupted_runs,
    resume_run_in_background,
    run_progress,
    run_summary,
)
from taskcraft_core.schema import Chunk, Document, EmptyUnit, GenerationRun, Task, UnitError, content_id, utcnow
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace

CHUNKS_PER_DOCUMENT = 2


def make_workspace(settings: Settings, documents: int = 3) -> Workspace:
    workspace = Workspace(settings, Store(settings.resolved_database_url), VectorIndex.open(settings))
    for d in range(documents):
        text = f"Document {d} says {d}0 things. It was written in 19{d}0."
        document = Document(id=f"doc{d}", source=f"d{d}.txt", content_hash=f"h{d}", title=f"Doc {d}",
                            doc_type="text", text=text)
        half = len(text) // 2
        chunks = [Chunk(id=f"doc{d}:{p}", document_id=document.id, position=p, text=text[p * half:(p + 1) * half],
                        start=p * half, end=(p + 1) * half) for p in range(CHUNKS_PER_DOCUMENT)]
        workspace.store.add_document(document, chunks)
    return workspace


@pytest.fixture
def workspace(settings: Settings) -> Workspace:
    return make_workspace(settings)


def task(kind: str, key: str, status: str = "pending", **values: Any) -> Task:
    return Task(id=content_id(kind, key), kind=kind, question=f"{kind} question about {key}?", golden_answer=key,
                content_identifier="Doc", engine="offline", model="offline", status=status,
                model_calls=2, tokens=10, **values)


class NothingHere(Exception):
    """What the fake method raises for a chunk without facts."""


class FakeMethod:
    """Scripted work: every atomic chunk gives one verified and one failed candidate (2 calls,
    10 tokens each), every depth unit one verified child, width pairs tasks in id order, and
    exploration starts from the first document and gives one verified and one failed task."""

    def __init__(self) -> None:
        self.atomic_hook: Callable[[Chunk, Any], None] = lambda chunk, context: None
        self.gate: Callable[[Workspace, Task], Any] | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def pipeline(self, workspace: Workspace, run: GenerationRun) -> Pipeline:
        return Pipeline(self.new_context, self.atomic, self.depth, self.group, self.width, self.explore_starts,
                        self.explore, gate=self.gate, empty_unit_errors=(NothingHere,))

    @staticmethod
    def new_context(cancel: threading.Event) -> Any:
        return SimpleNamespace(usage=Usage(), cancel=cancel)

    def atomic(self, document: Document, chunk: Chunk, context: Any) -> list[Task]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.atomic_hook(chunk, context)
            context.usage.add(calls=2, tokens=10)
            return [task("atomic", chunk.id, document_id=document.id, chunk_id=chunk.id),
                    task("atomic", chunk.id + "/x", "failed_verification", document_id=document.id,
                         failure_reason="the model alone knew it")]
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def depth(parent: Task, context: Any) -> list[Task]:
        context.usage.add(calls=3, tokens=30)
        return [task("depth", parent.id, parent_ids=[parent.id], hops=2, document_id=parent.document_id)]

    @staticmethod
    def group(tasks: Sequence[Task], context: Any) -> list[list[Task]]:
        context.usage.add(calls=1, tokens=1)
        return [list(tasks[i:i + 2]) for i in range(0, len(tasks) - 1, 2)]

    @staticmethod
    def width(group: list[Task], context: Any) -> Task:
        context.usage.add(calls=4, tokens=40)
        return task("width", "+".join(t.id for t in group), parent_ids=[t.id for t in group])

    @staticmethod
    def explore_starts(documents: Sequence[Document], context: Any) -> list[Document]:
        return list(documents[:1])

    @staticmethod
    def explore(documents: Sequence[Document], start: Document, context: Any) -> list[Task]:
        context.usage.add(calls=5, tokens=50)
        route = "+".join(d.id for d in documents)
        return [task("explore", f"{start.id}>{route}", document_id=documents[-1].id),
                task("explore", f"{start.id}>{route}/x", "failed_verification", failure_reason="executor got lost")]


def stored_tasks(workspace: Workspace) -> dict[str, str]:
    return {t.id: t.status for t in workspace.store.list_tasks(limit=None)}


def test_create_run_snapshots_the_configuration_without_the_key(settings: Settings) -> None:
    workspace = make_workspace(settings.with_changes(openai_api_key="sk-very-secret-1234", max_hops=3))
    run = create_run(workspace, RunRequest(kinds=["atomic"], engine="openai", model="m-1",
                                           base_url="http://127.0.0.1:9/v1", concurrency=2))
    stored = workspace.store.get_run(run.id)
    assert stored is not None and stored.status == "running"
    config = stored.config.model_dump(mode="json")
    assert config["document_ids"] == ["doc0", "doc1", "doc2"]
    assert (config["engine"], config["base_url"], config["prompt_version"]) == (
        "openai",
        "http://127.0.0.1:9/v1",
        PROMPT_VERSION,
    )
    assert config["models"] == {"generation": "m-1", "solver": "m-1", "judge": "m-1"}
    assert (config["settings"]["max_hops"], config["settings"]["concurrency"]) == (3, 2)
    assert config["request"]["kinds"] == ["atomic"]
    assert "sk-very-secret" not in json.dumps(config)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest(kinds=["atomic", "sideways"]), "Unknown task kinds: sideways"),
        (RunRequest(kinds=[]), "Unknown task kinds: (none given)"),
        (RunRequest(limit=0), "The limit must be at least 1"),
        (RunRequest(concurrency=0), "Concurrency must be between 1 and 64"),
        (RunRequest(engine="llama"), "Unknown engine 'llama'"),
        (RunRequest(document_ids=["doc0", "nope"]), "Unknown document ids: nope"),
        (RunRequest(engine="openai"), "The openai engine needs an endpoint"),
    ],
)
def test_bad_requests_are_refused_before_any_run_is_stored(workspace: Workspace, request_: RunRequest,
                                                           message: str) -> None:
    with pytest.raises(TaskCraftError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        create_run(workspace, request_)
    assert raised.value.hint
    assert workspace.store.list_runs() == []


def test_a_run_needs_documents(settings: Settings) -> None:
    with pytest.raises(TaskCraftError, match="no documents"):
        create_run(make_workspace(settings, documents=0), RunRequest())


def test_stages_run_in_order_and_everything_is_counted(workspace: Workspace) -> None:
    fake, seen = FakeMethod(), []
    three_at_once = threading.Barrier(3, timeout=5)  # breaks unless 3 units really run together
    fake.atomic_hook = lambda chunk, context: three_at_once.wait() and None
    run = create_run(workspace, RunRequest(engine="offline", concurrency=3))
    finished = execute_run(workspace, run.id, seen.append, pipeline=fake.pipeline)
    assert finished.status == "completed" and finished.finished_at is not None
    assert run_summary(finished).model_dump() == {
        "run_id": run.id, "candidates": 12 + 6 + 3 + 2, "accepted": 6 + 6 + 3 + 1, "rejected": 6 + 1,
        "already_present": 0,
        "by_kind": {"atomic": {"candidates": 12, "accepted": 6, "rejected": 6, "duplicates": 0, "present": 0},
                    "depth": {"candidates": 6, "accepted": 6, "rejected": 0, "duplicates": 0, "present": 0},
                    "width": {"candidates": 3, "accepted": 3, "rejected": 0, "duplicates": 0, "present": 0},
                    "explore": {"candidates": 2, "accepted": 1, "rejected": 1, "duplicates": 0, "present": 0}},
        "model_calls": 6 * 2 + 6 * 3 + 1 + 3 * 4 + 5, "errors": [], "empty_units": [],
        # the fake pipeline counts its calls without steps
        "calls": {"by_step": {}, "total": 0, "per_candidate": 0.0, "per_verified": 0.0,
                  "per_candidate_by_step": {}, "per_verified_by_step": {}},
        "status": "completed", "error": None,
    }
    assert finished.tokens == 6 * 10 + 6 * 30 + 1 + 3 * 40 + 50
    assert len(finished.done_units) == 6 + 6 + 3 + 1
    assert {unit.split(":")[0] for unit in finished.done_units} == {"atomic", "depth", "width", "explore"}
    assert "atomic:doc1:0" in finished.done_units and "explore:doc0" in finished.done_units
    # the exploration's environment is every document of the run
    assert workspace.store.get_task(content_id("explore", "doc0>doc0+doc1+doc2")).document_id == "doc2"
    assert workspace.store.count_tasks(TaskFilter(run_ids=[run.id])) == 23
    stages = [p.stage for p in seen]
    assert stages == sorted(stages, key=["atomic", "depth", "width", "explore"].index)
    assert (seen[-1].stage, seen[-1].done, seen[-1].total) == ("explore", 1, 1)
    assert run_progress(finished) == seen[-1]
    assert fake.most_in_flight == 3


def test_limit_stops_each_stage_at_n_verified_tasks(workspace: Workspace) -> None:
    run = create_run(workspace, RunRequest(kinds=["atomic", "depth"], limit=2, concurrency=1))
    finished = execute_run(workspace, run.id, pipeline=FakeMethod().pipeline)
    by_kind = run_summary(finished).model_dump()["by_kind"]
    assert (by_kind["atomic"]["accepted"], by_kind["depth"]["accepted"]) == (2, 2)
    assert sorted(finished.done_units) == sorted(
        ["atomic:doc0:0", "atomic:doc1:0", f"depth:{content_id('atomic', 'doc0:0')}",
         f"depth:{content_id('atomic', 'doc1:0')}"])
    assert finished.status == "completed"


def test_a_failing_unit_is_recorded_and_the_run_goes_on_then_resume_retries_it(workspace: Workspace) -> None:
    fake = FakeMethod()

    def fail_once(chunk: Chunk, context: Any) -> None:
        if chunk.id == "doc1:1":
            raise ValueError("malformed chunk")

    fake.atomic_hook = fail_once
    run = create_run(workspace, RunRequest(kinds=["atomic"]))
    finished = execute_run(workspace, run.id, pipeline=fake.pipeline)
    assert finished.status == "completed"
    assert run_summary(finished).errors == [UnitError(unit="atomic:doc1:1", error="ValueError: malformed chunk")]
    assert len(finished.done_units) == 5 and run_summary(finished).model_dump()["accepted"] == 5
    fake.atomic_hook = lambda chunk, context: None
    again = execute_run(workspace, run.id, pipeline=fake.pipeline)
    assert run_summary(again).model_dump()["errors"] == [] and run_summary(again).model_dump()["accepted"] == 6
    assert len(again.done_units) == 6


def test_an_unavailable_model_fails_the_run_with_a_clear_error(workspace: Workspace) -> None:
    fake = FakeMethod()

    def unavailable(chunk: Chunk, context: Any) -> None:
        context.usage.add(calls=1)
        raise ModelUnavailableError("Connection refused by http://127.0.0.1:9/v1")

    fake.atomic_hook = unavailable
    run = create_run(workspace, RunRequest(concurrency=1))
    finished = execute_run(workspace, run.id, pipeline=fake.pipeline)
    assert finished.status == "failed"
    assert finished.error == ("The model endpoint kept failing (3 units in a row): "
                              "Connection refused by http://127.0.0.1:9/v1")
    # Units are drawn round-robin across documents: the first chunk of each document comes first.
    assert [e.unit for e in run_summary(finished).errors] == ["atomic:doc0:0", "atomic:doc1:0", "atomic:doc2:0"]
    assert finished.done_units == [] and finished.model_calls == 3


def test_cancel_keeps_what_was_done_and_the_run_resumes_to_the_full_result(workspace: Workspace,
                                                                           tmp_path: Any) -> None:
    fake = FakeMethod()
    run = create_run(workspace, RunRequest(concurrency=1))

    def cancel_at_third_chunk(chunk: Chunk, context: Any) -> None:
        if chunk.id == "doc2:0":  # third in round-robin order
            cancel_run(workspace, run.id)  # as the UI would, from another thread
            assert context.cancel.wait(timeout=5), "the executor never passed the cancel on"

    fake.atomic_hook = cancel_at_third_chunk
    cancelled = execute_run(workspace, run.id, pipeline=fake.pipeline)
    assert cancelled.status == "cancelled"
    assert cancelled.done_units == ["atomic:doc0:0", "atomic:doc1:0"]
    assert len(stored_tasks(workspace)) == 4
    fake.atomic_hook = lambda chunk, context: None
    resumed = execute_run(workspace, run.id, pipeline=fake.pipeline)
    reference = make_workspace(Settings(home=tmp_path / "reference"))
    expected = execute_run(reference, create_run(reference, RunRequest()).id, pipeline=FakeMethod().pipeline)
    assert resumed.status == "completed"
    assert stored_tasks(workspace) == stored_tasks(reference)
    # Same yield; the unit cut short by the cancel had spent its 2 calls, and they stay counted.
    ignored = {"run_id": "", "model_calls": 0}
    assert run_summary(resumed).model_dump() | ignored == run_summary(expected).model_dump() | ignored
    assert resumed.model_calls == expected.model_calls + 2


def test_a_crash_mid_run_loses_nothing_and_resume_duplicates_nothing(workspace: Workspace, tmp_path: Any) -> None:
    fake = FakeMethod()

    def crash_at_fourth_chunk(chunk: Chunk, context: Any) -> None:
        if chunk.id == "doc0:1":  # fourth in round-robin order
            raise KeyboardInterrupt

    fake.atomic_hook = crash_at_fourth_chunk
    run = create_run(workspace, RunRequest(concurrency=1))
    with pytest.raises(KeyboardInterrupt):
        execute_run(workspace, run.id, pipeline=fake.pipeline)
    crashed = workspace.store.get_run(run.id)
    assert crashed is not None and crashed.status == "interrupted"
    assert crashed.done_units == ["atomic:doc0:0", "atomic:doc1:0", "atomic:doc2:0"]
    assert len(stored_tasks(workspace)) == 6
    assert [r.id for r in interrupted_runs(workspace)] == [run.id]
    fake.atomic_hook = lambda chunk, context: None
    resumed = execute_run(workspace, run.id, pipeline=fake.pipeline)
    reference = make_workspace(Settings(home=tmp_path / "reference"))
    expected = execute_run(reference, create_run(reference, RunRequest()).id, pipeline=FakeMethod().pipeline)
    assert stored_tasks(workspace) == stored_tasks(reference)
    assert workspace.store.count_tasks() == 23
    assert run_summary(resumed).model_dump()["by_kind"] == run_summary(expected).model_dump()["by_kind"]
    assert interrupted_runs(workspace) == []


def running_run(workspace: Workspace, run_id: str, **counts: Any) -> None:
    run = GenerationRun(id=run_id, config={"request": RunRequest().model_dump()}, counts=counts)
    workspace.store.save_run(run)


def test_runs_left_running_by_dead_processes_are_found(workspace: Workspace) -> None:
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = utcnow()
    host = socket.gethostname()
    running_run(workspace, "dead-pid", heartbeat=now.isoformat(), pid=int(dead.stdout), host=host)
    running_run(workspace, "stale", heartbeat=(now - timedelta(minutes=5)).isoformat(), pid=os.getppid(),
                host="elsewhere")
    running_run(workspace, "alive", heartbeat=now.isoformat(), pid=os.getppid(), host=host)
    assert sorted(r.id for r in interrupted_runs(workspace)) == ["dead-pid", "stale"]
    statuses = {r.id: r.status for r in workspace.store.list_runs()}
    assert statuses == {"dead-pid": "interrupted", "stale": "interrupted", "alive": "running"}
    with pytest.raises(TaskCraftError, match="already executing"):
        execute_run(workspace, "alive", pipeline=FakeMethod().pipeline)


def test_near_duplicate_gate_flags_or_skips_and_is_counted(settings: Settings) -> None:
    for action, status, reason, accepted in (
        ("flag", "pending", "possible near-duplicate of older", 6),
        ("skip", "duplicate", "near-duplicate of older", 5),
    ):
        workspace = make_workspace(settings.with_changes(home=settings.home / action, duplicate_action=action))
        fake = FakeMethod()
        target = content_id("atomic", "doc2:0")
        fake.gate = lambda ws, candidate, target=target: (SimpleNamespace(a=candidate.id, b="older")
                                                          if candidate.id == target else None)
        run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"])).id, pipeline=fake.pipeline)
        gated = workspace.store.get_task(target)
        assert gated is not None and (gated.status, gated.failure_reason) == (status, reason)
        atomic = run_summary(run).model_dump()["by_kind"]["atomic"]
        assert (atomic["candidates"], atomic["accepted"], atomic["duplicates"]) == (12, accepted, 1)


def test_unknown_runs_are_reported(workspace: Workspace) -> None:
    with pytest.raises(TaskCraftError, match="No generation run with id nope"):
        cancel_run(workspace, "nope")
    with pytest.raises(TaskCraftError, match="No generation run with id nope"):
        execute_run(workspace, "nope", pipeline=FakeMethod().pipeline)


def test_progress_is_saved_for_pollers(workspace: Workspace) -> None:
    fake = FakeMethod()
    run = create_run(workspace, RunRequest(kinds=["atomic"], concurrency=1))
    seen_in_db: list[tuple[str, int, int]] = []

    def look(chunk: Chunk, context: Any) -> None:
        stored = workspace.store.get_run(run.id)
        assert stored is not None
        progress = run_progress(stored)
        seen_in_db.append((progress.stage, progress.done, progress.total))

    fake.atomic_hook = look
    execute_run(workspace, run.id, pipeline=fake.pipeline)
    assert seen_in_db == [("atomic", n, 6) for n in range(6)]


def test_a_unit_with_nothing_to_give_is_done_and_noted_not_failed(workspace: Workspace) -> None:
    fake = FakeMethod()

    def no_facts(chunk: Chunk, context: Any) -> None:
        if chunk.id == "doc0:1":
            raise NothingHere("chunk 1 of Doc 0 has no extractable facts")

    fake.atomic_hook = no_facts
    finished = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"])).id, pipeline=fake.pipeline)
    assert (finished.status, finished.error) == ("completed", None) and len(finished.done_units) == 6
    assert run_summary(finished).model_dump()["errors"] == []
    assert finished.counts.empty_units == [
        EmptyUnit(unit="atomic:doc0:1", reason="chunk 1 of Doc 0 has no extractable facts")]
    assert finished.counts.model_dump()["funnel"]["atomic_empty_units"] == 1
    assert run_summary(finished).model_dump()["accepted"] == 5


def test_the_stage_executor_refuses_a_website_exploration_and_names_its_resume(workspace: Workspace) -> None:
    from taskcraft_core.runs.site_exploration import ExploreRequest, create_exploration

    run = create_exploration(workspace, ExploreRequest(start_url="https://docs.example.org/", engine="offline"))
    workspace.store.update_run(run.id, status="interrupted")
    for resume in (resume_run_in_background, execute_run):
        with pytest.raises(TaskCraftError, match=f"Run {run.id} is a website exploration") as refused:
            resume(workspace, run.id)
        assert refused.value.hint == f"Resume it with `explore --resume {run.id}` or on the Generate page."
    assert workspace.store.get_run(run.id).status == "interrupted"


def test_a_running_website_exploration_keeps_a_heartbeat_so_it_is_not_taken_for_a_dead_one(
        workspace: Workspace) -> None:
    from taskcraft_core.runs.site_exploration import ExploreRequest, _CancelWatcher, create_exploration

    run = create_exploration(workspace, ExploreRequest(start_url="https://docs.example.org/", engine="offline"))
    workspace.store.update_run(run.id, started_at=utcnow() - timedelta(minutes=5))  # started long ago
    with _CancelWatcher(workspace, run.id, threading.Event()):
        beating = workspace.store.get_run(run.id)
        assert beating.counts.pid == os.getpid() and beating.counts.heartbeat is not None
        assert interrupted_runs(workspace) == [] and workspace.store.get_run(run.id).status == "running"


def test_the_exploration_watcher_survives_a_database_error_and_still_sees_the_cancel(workspace: Workspace) -> None:
    from sqlalchemy.exc import OperationalError

    from taskcraft_core.runs.site_exploration import ExploreRequest, _CancelWatcher, create_exploration

    run = create_exploration(workspace, ExploreRequest(start_url="https://docs.example.org/", engine="offline"))
    original, failures = workspace.store.get_run, []

    def locked_once(run_id: str) -> GenerationRun | None:
        if not failures:
            failures.append(run_id)
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return original(run_id)

    flag = threading.Event()
    with _CancelWatcher(workspace, run.id, flag, poll_s=0.01):
        workspace.store.get_run = locked_once  # type: ignore[method-assign]
        workspace.store.update_run(run.id, status="cancelled")
        assert flag.wait(5)
    assert failures == [run.id]


def exploration(workspace: Workspace, status: str, **request: Any) -> GenerationRun:
    from taskcraft_core.runs.site_exploration import ExploreRequest, create_exploration

    run = create_exploration(workspace, ExploreRequest(start_url="http://127.0.0.1:9/", engine="offline", **request))
    workspace.store.update_run(run.id, status=status)
    return run


def test_a_resume_that_cannot_start_leaves_the_run_as_it_was_and_one_that_fails_later_ends_it_failed(
        workspace: Workspace) -> None:
    from pydantic import ValidationError

    from taskcraft_core.runs.site_exploration import resume_exploration

    run = exploration(workspace, "interrupted")
    stored = run.config.settings["explore_site"]
    workspace.store.update_run(run.id, config=run.config.model_copy(update={  # a request no longer valid
        "settings": {"explore_site": stored | {"tasks_per_guideline": 0}}}))
    with pytest.raises(ValidationError, match="tasks_per_guideline"):
        resume_exploration(workspace, run.id)
    assert workspace.store.get_run(run.id).status == "interrupted"
    workspace.store.update_run(run.id, config=run.config)
    with pytest.raises(TaskCraftError, match="127.0.0.1 resolves to 127.0.0.1, a loopback address"):
        resume_exploration(workspace, run.id)  # refused by the URL guard once running: the run ends failed
    stopped = workspace.store.get_run(run.id)
    assert stopped.status == "failed" and "loopback address" in (stopped.error or "")


def test_a_website_exploration_a_dead_process_left_running_can_be_resumed(workspace: Workspace) -> None:
    from taskcraft_core.runs.site_exploration import resume_exploration

    run = exploration(workspace, "running")
    with pytest.raises(TaskCraftError, match=f"The exploration {run.id} is already running"):
        resume_exploration(workspace, run.id)  # its process (this one) is alive and beat just now
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    workspace.store.update_run(run.id, counts=run.counts.model_copy(update={
        "pid": int(dead.stdout), "host": socket.gethostname(), "heartbeat": utcnow()}))
    with pytest.raises(TaskCraftError, match="loopback address"):  # it ran on, and the URL guard refused the start
        resume_exploration(workspace, run.id)
    assert workspace.store.get_run(run.id).status == "failed"


def test_of_two_resumes_at_once_one_claims_the_run_and_the_other_is_refused(workspace: Workspace) -> None:
    from taskcraft_core.runs.site_exploration import _resumable

    run = exploration(workspace, "interrupted")
    both_read = threading.Barrier(2, timeout=5)
    original = workspace.store.get_run

    def read_together(run_id: str) -> GenerationRun | None:
        found = original(run_id)
        if threading.current_thread().name.startswith("resume-"):
            both_read.wait()  # both see the run stopped before either marks it running
        return found

    workspace.store.get_run = read_together  # type: ignore[method-assign]
    outcomes: list[str] = []

    def resume() -> None:
        try:
            _resumable(workspace, run.id, None)
            outcomes.append("claimed")
        except TaskCraftError as refused:
            outcomes.append(refused.message)

    threads = [threading.Thread(target=resume, name=f"resume-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [f"The exploration {run.id} is already running.", "claimed"]


def test_an_exploration_allowing_private_addresses_needs_the_right_to_use_them(workspace: Workspace) -> None:
    from taskcraft_core.access import AccessDenied, signed_in_principal
    from taskcraft_core.runs.site_exploration import ExploreRequest, create_exploration, resume_exploration

    roles = {"curators": ["cy@example.org"], "default": "viewer"}
    curator = workspace.acting_as(signed_in_principal("cy@example.org", "Cy", roles))
    with pytest.raises(AccessDenied, match="may not use private addresses"):
        create_exploration(curator, ExploreRequest(start_url="http://10.0.0.5/", allow_private_urls=True,
                                                   engine="offline"))
    assert workspace.store.list_runs() == []
    run = exploration(workspace, "interrupted", allow_private_urls=True)  # an admin's
    with pytest.raises(AccessDenied, match="may not use private addresses"):
        resume_exploration(curator, run.id)
    assert workspace.store.get_run(run.id).status == "interrupted"
    assert create_exploration(curator, ExploreRequest(start_url="https://docs.example.org/", engine="offline"))
