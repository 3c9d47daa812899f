"""Queue execution of generation runs: the same work units as the inline executor, as jobs on a
PostgreSQL task queue (procrastinate), executed by `python -m taskcraft_core worker` processes on
any machine that reaches the database (and the Chroma server).

A run becomes a chain of jobs: `plan_stage(run, stage)` plans the stage's units with the executor's
planning and defers one `run_unit` job per unit not done yet; each `run_unit` rebuilds its unit from
its ids (`Executor.unit`), executes it, and records the outcome with the executor's recording (gate,
funnel, tasks and done mark in one transaction) under a per-run lock (`Store.run_lock`), since
units of one run finish on several machines at once. The job that finishes the stage's last unit
defers the next stage's planning, or completes the run.

Nothing is lost or doubled when a worker dies: procrastinate keeps the dead worker's jobs in
`doing`, every worker looks for jobs of workers whose heartbeat stopped (`recover_stalled_jobs`) and
puts them back in the queue; a unit already recorded is skipped, and task ids are content-derived,
so a unit executed twice stores its tasks once. A cancel is the run's status: units not started
return at once, units in flight notice within a second and stay undone (a resume runs them again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.worker import Worker
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.consistency import ensure_index
from taskcraft_core.runs.executor import Executor, snapshot_workspace
from taskcraft_core.runs.planning import PipelineFactory, RunPlanner, WorkUnit
from taskcraft_core.schema import GenerationRun, Task, utcnow
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.store.run_locks import advisory_key
from taskcraft_core.workspace import Workspace

logger = logging.getLogger(__name__)

QUEUE = "taskcraft"
NAMESPACE = "taskcraft"
# How often a unit in flight looks at its run's status (cancel, failure, stage limit), in seconds.
WATCH_INTERVAL_S = 1.0
# A worker whose heartbeat is older than this is dead; its jobs go back to the queue.
STALLED_AFTER_S = 30.0
# Executors' pipelines kept per worker process (one per run recently worked on).
PIPELINES_KEPT = 4

jobs = procrastinate.Blueprint()


# ---- the queue and its schema ------------------------------------------------------------------


def conninfo(database_url: str) -> str:
    """The libpq connection string of the studio's SQLAlchemy database URL (PostgreSQL only)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise TaskCraftError(f"Queue workers need a PostgreSQL database, not {url.get_backend_name()}.",
                             "Set TASKCRAFT_DATABASE_URL=postgresql+psycopg://... or TASKCRAFT_WORKERS=inline.")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(settings: Settings) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.resolved_database_url)))
    app.add_tasks_from(jobs, namespace=NAMESPACE)
    return app


def ensure_schema(store: Store) -> None:
    """Create procrastinate's tables on first use (once, even with several processes starting)."""
    from procrastinate.schema import SchemaManager

    with store.engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key("taskcraft-queue-schema")})
        if connection.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None:
            connection.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))  # no placeholders in it


def _defer(app: procrastinate.App, task: str, lock: str, **arguments: Any) -> None:
    """Defer a job unless the same one is already waiting (resume after cancel, retried planning);
    jobs with the same lock never run at once."""
    try:
        app.configure_task(f"{NAMESPACE}:{task}", queue=QUEUE, lock=lock, queueing_lock=lock).defer(**arguments)
    except procrastinate_errors.AlreadyEnqueued:
        pass


def enqueue_run(workspace: Workspace, run: GenerationRun) -> None:
    """Hand a stored run to the workers, from the stage where it stopped (its first stage when new)."""
    app = make_app(workspace.settings)
    ensure_schema(workspace.store)
    stage = run.counts.stage or run.config.request.kinds[0]
    workspace.store.update_run(run.id, status="running", error=None, finished_at=None,
                               config=run.config.model_copy(update={"workers": "queue"}))
    with app.open():
        _defer(app, "plan_stage", f"{run.id}/plan/{stage}", run_id=run.id, stage=stage)


# ---- the jobs ----------------------------------------------------------------------------------


@jobs.task(name="plan_stage", pass_context=True)
def plan_stage(context: procrastinate.JobContext, run_id: str, stage: str) -> None:
    _runner(context).plan_stage(context.app, run_id, stage)


@jobs.task(name="run_unit", pass_context=True)
def run_unit(context: procrastinate.JobContext, run_id: str, unit_id: str, parts: list[str]) -> None:
    _runner(context).run_unit(context.app, run_id, unit_id, parts)


def _runner(context: procrastinate.JobContext) -> QueueRunner:
    runner = context.additional_context["runner"]
    assert isinstance(runner, QueueRunner)
    return runner


class QueueRunner:
    """What the jobs of one worker process share: the workspace, the pipeline factory, and the
    pipelines (engines) of the runs it recently worked on."""

    def __init__(self, workspace: Workspace, make_pipeline: PipelineFactory) -> None:
        self.workspace = workspace
        self.store = workspace.store
        self.make_pipeline = make_pipeline
        self._pipelines: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def executor(self, run: GenerationRun) -> Executor:
        """A fresh executor over the stored state of the run (planning and recording only), with a
        pipeline shared by the run's jobs in this process."""
        workspace = snapshot_workspace(self.workspace, run)
        executor = Executor(workspace, run, self.make_pipeline, None)
        with self._lock:
            pipeline = self._pipelines.pop(run.id, None) or self.make_pipeline(workspace, run)
            self._pipelines[run.id] = pipeline
            while len(self._pipelines) > PIPELINES_KEPT:
                self._pipelines.popitem(last=False)
        executor.pipeline = pipeline
        return executor

    def planner(self, executor: Executor) -> RunPlanner:
        """The run's planning, its model calls counted on the executor's copy of the run."""
        state = executor.state
        return RunPlanner(self.store, state.run, executor.pipeline, executor.add_usage, state.cancel)

    def running(self, run_id: str) -> GenerationRun | None:
        run = self.store.get_run(run_id)
        return run if run is not None and run.status == "running" else None

    # ---- planning ------------------------------------------------------------------------------

    def plan_stage(self, app: procrastinate.App, run_id: str, stage: str) -> None:
        run = self.running(run_id)
        if run is None:
            return
        planner = self.executor(run)
        ensure_index(planner.workspace)  # as inline: a run never verifies against an index missing documents
        calls, tokens = run.model_calls, run.tokens
        units = self.planner(planner).plan(stage)  # width and explore planning may call the model
        calls, tokens = run.model_calls - calls, run.tokens - tokens  # counted on `run` by the planner
        with self.store.run_lock(run_id):
            run = self.running(run_id)
            if run is None:
                return
            recorder = self.executor(run)
            state = recorder.state
            state.stage, state.stage_total = stage, len(units)
            state.stage_done = sum(unit.id in state.done for unit in units)
            state.pending = {unit.id for unit in units if unit.id not in state.done}
            state.run.model_calls += calls
            state.run.tokens += tokens
            recorder.save()
            if not state.pending:
                self.advance(app, recorder, stage)
                return
        for unit in units:
            if unit.id in state.pending:
                _defer(app, "run_unit", f"{run_id}/{unit.id}", run_id=run_id, unit_id=unit.id, parts=list(unit.parts))

    def advance(self, app: procrastinate.App, recorder: Executor, stage: str) -> None:
        """The stage is over (called under the run lock): plan the next one or complete the run."""
        later = recorder.kinds[recorder.kinds.index(stage) + 1:] if stage in recorder.kinds else []
        if later:
            _defer(app, "plan_stage", f"{recorder.state.run.id}/plan/{later[0]}", run_id=recorder.state.run.id,
                   stage=later[0])
            return
        self.store.update_run(recorder.state.run.id, status="completed", error=None, finished_at=utcnow())

    # ---- one unit ------------------------------------------------------------------------------

    def run_unit(self, app: procrastinate.App, run_id: str, unit_id: str, parts: Sequence[str]) -> None:
        run = self.running(run_id)
        if run is None:
            return  # cancelled or failed: the unit stays undone for a resume
        stage = unit_id.split(":", 1)[0]
        executor = self.executor(run)
        if unit_id in executor.state.done:
            # Executed again after its worker died between storing and indexing: index the run's tasks.
            executor.reindex()
        elif executor.stage_full(stage):
            pass  # the stage reached its limit: the unit is left undone, as inline
        else:
            self.execute_and_record(app, executor, stage, unit_id, parts)
            return
        with self.store.run_lock(run_id):
            self.settle(app, run_id, unit_id, stage, None)

    def execute_and_record(self, app: procrastinate.App, executor: Executor, stage: str, unit_id: str,
                           parts: Sequence[str]) -> None:
        run_id = executor.state.run.id
        halt = threading.Event()
        context = executor.pipeline.new_context(halt)
        tasks: list[Task] | None = None
        error: BaseException | None = None
        unit: WorkUnit | None = None
        try:
            unit = self.planner(executor).unit(stage, parts)
            with self.watch(run_id, stage, executor.limit, halt):
                tasks = unit.work(context)
        except Exception as failure:
            error = failure
        unit = unit or WorkUnit(unit_id, stage, lambda _context: [], tuple(parts))
        with self.store.run_lock(run_id):
            self.settle(app, run_id, unit_id, stage, (unit, context, tasks, error, halt.is_set()))

    def settle(self, app: procrastinate.App, run_id: str, unit_id: str, stage: str,
               outcome: tuple[WorkUnit, Any, list[Task] | None, BaseException | None, bool] | None) -> None:
        """Under the run lock: record the unit's outcome (if any) on the stored run, take it off the
        stage's pending units, and end the stage when it was the last one."""
        run = self.store.get_run(run_id)
        if run is None:
            return
        recorder = self.executor(run)
        state = recorder.state
        duplicate = unit_id in state.done and outcome is not None
        state.pending.discard(unit_id)
        if outcome is not None and not duplicate:
            unit, context, tasks, error, halted = outcome
            if halted or run.status != "running":
                state.halt.set()  # stopped early: usage counted, the unit stays undone
            recorder.finish_unit(unit, context, tasks, error)
        else:
            if outcome is not None:
                recorder.add_usage(outcome[1])  # executed twice: its calls were paid twice
            recorder.save()
        if state.failure:
            self.store.update_run(run_id, status="failed", error=state.failure, finished_at=utcnow())
        elif run.status == "running" and not state.pending and state.stage == stage:
            self.advance(app, recorder, stage)

    @contextlib.contextmanager
    def watch(self, run_id: str, stage: str, limit: int | None, halt: threading.Event) -> Iterator[None]:
        """While a unit runs: halt it when its run stops running or its stage reaches the limit."""
        done = threading.Event()

        def poll() -> None:
            while not done.wait(WATCH_INTERVAL_S):
                run = self.store.get_run(run_id)
                full = limit is not None and run is not None and \
                    run.counts.funnel.get(f"{stage}_accepted", 0) >= limit
                if run is None or run.status != "running" or full:
                    halt.set()
                    return

        watcher = threading.Thread(target=poll, name=f"watch-{run_id}", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()


# ---- the worker process ------------------------------------------------------------------------


def run_worker(workspace: Workspace, make_pipeline: PipelineFactory, *, concurrency: int,
               stalled_after_s: float = STALLED_AFTER_S) -> None:
    """Execute queued units until SIGTERM or SIGINT; then finish the units in flight and return."""
    app = make_app(workspace.settings)
    ensure_schema(workspace.store)
    runner = QueueRunner(workspace, make_pipeline)

    async def main() -> None:
        # Sync jobs run on the loop's default executor: give it one thread per unit in flight.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(concurrency, thread_name_prefix="unit"))
        async with app.open_async():
            worker = Worker(app, queues=[QUEUE], concurrency=concurrency, additional_context={"runner": runner},
                            update_heartbeat_interval=stalled_after_s / 3, stalled_worker_timeout=stalled_after_s,
                            install_signal_handlers=True, wait=True)
            side_tasks = [asyncio.create_task(recover_stalled_jobs(app, stalled_after_s)),
                          asyncio.create_task(keep_beating(worker, stalled_after_s / 3))]
            try:
                await worker.run()
            finally:
                for task in side_tasks:
                    task.cancel()

    asyncio.run(main())


async def keep_beating(worker: Worker, interval_s: float) -> None:
    """procrastinate stops its heartbeat as soon as a stop is requested, while units still finish
    (they may take minutes): without this, other workers would take those units for dead ones."""
    while True:
        await asyncio.sleep(interval_s)
        if worker.worker_id is not None:
            with contextlib.suppress(Exception):  # the database blinked: the next beat counts
                await worker.app.job_manager.update_heartbeat(worker.worker_id)


async def recover_stalled_jobs(app: procrastinate.App, stalled_after_s: float) -> None:
    """Put the jobs of workers whose heartbeat stopped (killed, machine lost) back in the queue."""
    while True:
        await asyncio.sleep(stalled_after_s / 3)
        try:
            stalled = await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stalled_after_s)
            for job in stalled:
                logger.warning("job %s (%s) of a dead worker goes back to the queue", job.id, job.task_name)
                await app.job_manager.retry_job(job)
        except Exception:  # another worker retried it first, or the database blinked: try next round
            logger.exception("stalled-job recovery failed; trying again")


# ---- health, for the Generate page -------------------------------------------------------------


class WorkerInfo(BaseModel):
    """One worker process known to the queue."""

    id: int
    last_heartbeat: datetime
    seconds_since_heartbeat: float
    units_in_flight: int
    alive: bool


class QueueHealth(BaseModel):
    """The workers and the jobs waiting, running and failed."""

    workers: list[WorkerInfo]
    waiting: int
    in_flight: int
    failed: int


def queue_health(store: Store, stalled_after_s: float = STALLED_AFTER_S) -> QueueHealth:
    with store.engine.connect() as connection:
        if connection.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None:
            return QueueHealth(workers=[], waiting=0, in_flight=0, failed=0)
        rows = connection.execute(text(
            "SELECT w.id, w.last_heartbeat, EXTRACT(EPOCH FROM NOW() - w.last_heartbeat) AS age, "
            "COUNT(j.id) FILTER (WHERE j.status = 'doing') AS doing "
            "FROM procrastinate_workers w LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id "
            "GROUP BY w.id ORDER BY w.id")).all()
        counts: dict[str, int] = dict(connection.execute(text(
            "SELECT status::text, COUNT(*) FROM procrastinate_jobs WHERE queue_name = :queue GROUP BY status"),
            {"queue": QUEUE}).tuples().all())
    workers = [WorkerInfo(id=row.id, last_heartbeat=row.last_heartbeat, seconds_since_heartbeat=float(row.age),
                          units_in_flight=int(row.doing), alive=float(row.age) < stalled_after_s) for row in rows]
    return QueueHealth(workers=workers, waiting=int(counts.get("todo", 0)), in_flight=int(counts.get("doing", 0)),
                       failed=int(counts.get("failed", 0)))
