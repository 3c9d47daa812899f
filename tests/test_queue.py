"""Runs on the task queue: real `python -m taskcraft_core worker` processes on a PostgreSQL server and
a Chroma server started by the test, the LLM engine against the stub server (a prompt-following model
that takes 0.2 s per call, so a unit is in flight long enough to be killed or cancelled).

The reference for "nothing lost, nothing doubled" is the same request executed inline on SQLite: the
model is deterministic and task ids are content-derived, so both must store exactly the same tasks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.runs import queue
from taskcraft_core.runs.service import (
    RunRequest,
    cancel_run,
    create_run,
    execute_run,
    resume_run_in_background,
    run_summary,
    wait_for_run,
)
from taskcraft_core.schema import GenerationRun
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.prompt_following import PromptFollowingModel
from tests.servers import (
    REPO,
    chroma_server,
    fresh_database,
    postgres_server,
    start_worker,
    stop,
    studio_env,
    wait_until,
)
from tests.stub_openai import StubOpenAI

pytestmark = pytest.mark.slow

DOCUMENTS = ("rv_storm_petrel.md", "ada_merrow.md")
STALLED_AFTER_S = "3"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def chroma() -> Iterator[str]:
    with chroma_server() as url:
        yield url


@pytest.fixture(scope="module")
def stub() -> Iterator[StubOpenAI]:
    with StubOpenAI(latency_s=0.2, default=PromptFollowingModel()) as server:
        yield server


def model_settings(home: Path, stub: StubOpenAI) -> Settings:
    return Settings(home=home, openai_base_url=stub.base_url, model="stub-model", cache_responses=False,
                    max_retries=0, max_candidates_per_chunk=2)


def with_documents(settings: Settings) -> Workspace:
    workspace = Workspace.open(settings)
    report = ingest_locations([str(sample_corpus_path() / name) for name in DOCUMENTS], workspace)
    assert report.documents_added == len(DOCUMENTS)
    return workspace


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, stub: StubOpenAI) -> dict[str, str]:
    """Task id -> status of the same atomic run executed inline on SQLite and local Chroma."""
    workspace = with_documents(model_settings(tmp_path_factory.mktemp("inline"), stub))
    run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], engine="openai")).id)
    assert run.status == "completed" and not run.counts.errors
    return {task.id: task.status for task in workspace.store.iter_tasks(TaskFilter(run_ids=[run.id]))}


@pytest.fixture
def team(tmp_path: Path, postgres: str, chroma: str, stub: StubOpenAI) -> Workspace:
    """The studio side of a team deployment: its own database on the server, a clean Chroma server."""
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma.rsplit(":", 1)[1]))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    settings = model_settings(tmp_path / "app", stub).with_changes(
        database_url=fresh_database(postgres), chroma_url=chroma, workers="queue")
    return with_documents(settings)


def worker_env(workspace: Workspace) -> dict[str, str]:
    settings = workspace.settings
    assert settings.database_url and settings.chroma_url
    return {"TASKCRAFT_DATABASE_URL": settings.database_url, "TASKCRAFT_CHROMA_URL": settings.chroma_url,
            "TASKCRAFT_WORKERS": "queue"}


def jobs(workspace: Workspace, status: str) -> list[tuple[int, str, int, int | None]]:
    """(id, task, attempts, worker id) of the queue's jobs in one status."""
    with workspace.store.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT id, task_name, attempts, worker_id FROM procrastinate_jobs WHERE status = :status ORDER BY id"),
            {"status": status}).all()
    return [(row.id, row.task_name, row.attempts, row.worker_id) for row in rows]


def run_tasks(workspace: Workspace, run: GenerationRun) -> dict[str, str]:
    return {task.id: task.status for task in workspace.store.iter_tasks(TaskFilter(run_ids=[run.id]))}


def atomic_units(workspace: Workspace) -> set[str]:
    return {f"atomic:{chunk.id}" for document in workspace.store.list_documents()
            for chunk in workspace.store.get_chunks(document.id)}


def test_a_worker_killed_mid_unit_loses_nothing_and_doubles_nothing(team: Workspace, tmp_path: Path,
                                                                    reference: dict[str, str]) -> None:
    env = worker_env(team)
    run = create_run(team, RunRequest(kinds=["atomic"], engine="openai", concurrency=2))
    first = start_worker(tmp_path / "w1", env, "--concurrency", "2", "--stalled-after", STALLED_AFTER_S)
    second = None
    try:
        resume_run_in_background(team, run.id)  # queue mode: enqueues the run
        wait_until(lambda: any(task.endswith("run_unit") for _, task, _, _ in jobs(team, "doing")), 60,
                   "the first worker to start a unit")
        first_worker_id = jobs(team, "doing")[0][3]
        second = start_worker(tmp_path / "w2", env, "--concurrency", "2", "--stalled-after", STALLED_AFTER_S)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        killed_jobs = {job_id for job_id, _, _, worker_id in jobs(team, "doing") if worker_id == first_worker_id}
        finished = wait_for_run(team, run.id, poll_s=0.5)
        assert stop(second) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop(process, signal.SIGKILL)
    assert finished.status == "completed", (finished.error, (tmp_path / "w2" / "worker.log").read_text()[-3000:])
    assert set(finished.done_units) == atomic_units(team)
    assert run_tasks(team, finished) == reference  # same tasks, same verdicts: none lost, none doubled
    summary = run_summary(finished)
    assert summary.candidates == len(reference) and summary.errors == []
    assert summary.accepted == sum(status == "pending" for status in reference.values())
    # procrastinate counts an attempt when a job ends or is retried: the killed units were taken up
    # again exactly once, every other job ran once.
    attempts = {job_id: tries for job_id, _, tries, _ in jobs(team, "succeeded")}
    assert killed_jobs and {job_id: attempts[job_id] for job_id in killed_jobs} == {job_id: 2 for job_id in killed_jobs}
    assert {tries for job_id, tries in attempts.items() if job_id not in killed_jobs} == {1}


def test_cancel_and_resume_across_workers(team: Workspace, tmp_path: Path, reference: dict[str, str]) -> None:
    env = worker_env(team)
    run = create_run(team, RunRequest(kinds=["atomic"], engine="openai", concurrency=2))
    workers = [start_worker(tmp_path / f"w{i}", env, "--concurrency", "1") for i in (1, 2)]
    try:
        resume_run_in_background(team, run.id)
        wait_until(lambda: len(jobs(team, "doing")) == 2, 60, "both workers to be busy")
        cancel_run(team, run.id)
        cancelled = team.store.get_run(run.id)
        assert cancelled is not None and cancelled.status == "cancelled" and cancelled.finished_at is not None
        wait_until(lambda: not jobs(team, "doing"), 30, "the units in flight to stop")
        stopped = team.store.get_run(run.id)
        assert stopped is not None and len(stopped.done_units) < len(atomic_units(team))
        # Another process resumes it: the workers take it up where it stopped.
        resumed = subprocess.run([sys.executable, "-m", "taskcraft_core", "generate", "--resume", run.id, "--json"],
                                 cwd=REPO, env=studio_env(tmp_path / "cli", env), capture_output=True, text=True,
                                 timeout=180)
        assert resumed.returncode == 0, resumed.stderr
        finished = team.store.get_run(run.id)
        assert finished is not None and json.loads(resumed.stdout) == run_summary(finished).model_dump(mode="json")
    finally:
        codes = [stop(worker) for worker in workers]
    assert codes == [0, 0]
    assert finished.status == "completed" and set(finished.done_units) == atomic_units(team)
    assert run_tasks(team, finished) == reference


def test_generate_no_wait_prints_the_run_id_and_sigterm_finishes_the_unit_in_flight(
        team: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = worker_env(team)
    cli_env = env | {"OPENAI_BASE_URL": team.settings.openai_base_url or "", "TASKCRAFT_MODEL": "stub-model"}
    enqueued = subprocess.run([sys.executable, "-m", "taskcraft_core", "generate", "--kinds", "atomic", "--engine",
                               "openai", "--json", "--no-wait"], cwd=REPO, env=studio_env(tmp_path / "cli", cli_env),
                              capture_output=True, text=True, timeout=60)
    assert enqueued.returncode == 0, enqueued.stderr
    run_id = json.loads(enqueued.stdout)["run_id"]
    assert list(json.loads(enqueued.stdout)) == ["run_id"]
    worker = start_worker(tmp_path / "w", env, "--concurrency", "1")
    try:
        wait_until(lambda: any(task.endswith("run_unit") for _, task, _, _ in jobs(team, "doing")), 60,
                   "the worker to start a unit")
        # The Generate page of a studio on the same database shows the worker and its unit.
        for name, value in (env | {"TASKCRAFT_HOME": str(tmp_path / "app")}).items():
            monkeypatch.setenv(name, value)
        page = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        page.switch_page("app_pages/generate.py").run()
        assert not page.exception
        assert [c.value for c in page.caption if "live workers" in c.value] == [
            "1 live workers · 1 units in flight · 3 waiting · 0 failed"]
        assert stop(worker, signal.SIGTERM) == 0
    finally:
        if worker.poll() is None:
            stop(worker, signal.SIGKILL)
    run = team.store.get_run(run_id)
    assert run is not None and run.status == "running"
    # The unit in flight was finished and recorded, once; nothing is left half-done in the queue.
    finished_units = [job for job in jobs(team, "succeeded") if job[1].endswith("run_unit")]
    assert len(run.done_units) == len(finished_units) >= 1 and not jobs(team, "doing")
    assert {attempts for _, _, attempts, _ in finished_units} == {1}
    health = queue.queue_health(team.store)
    assert health.in_flight == 0 and health.waiting >= 1


def test_queue_mode_needs_postgresql(tmp_path: Path) -> None:
    workspace = Workspace.open(Settings(home=tmp_path, workers="queue"))
    ingest_locations([str(sample_corpus_path() / DOCUMENTS[0])], workspace)
    from taskcraft_core.errors import TaskCraftError
    from taskcraft_core.runs.service import start_run_in_background

    with pytest.raises(TaskCraftError, match="Queue workers need a PostgreSQL database, not sqlite"):
        start_run_in_background(workspace, RunRequest(kinds=["atomic"]))
