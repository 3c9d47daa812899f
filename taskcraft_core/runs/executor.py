"""The engine room of a generation run: work units, a thread pool, and one writer.

A run is split into work units with stable ids — `atomic:<chunk id>`, `depth:<task id>`,
`width:<sorted task ids>`, `explore:<start document id>` — executed stage by stage (atomic, depth,
width, then explore). Exploration (METHOD §2) plans one unit per start page, and the real method
picks one start page per run (`choose_start_page`: the page from which most of the run's documents
are reachable by links), as AutoPlay explores an app from its launch screen; a unit explores the
run's documents from there and writes, grounds and verifies tasks from what it saw. Worker threads
only call the method (model calls, agent runs); this module's coordinating thread does every write:
a unit's tasks and its mark in `run.done_units` are stored in one transaction, so a killed process
resumes exactly where it stopped, without duplicating or losing tasks.

The per-unit work is a `Pipeline` (the real method, `runs.method_pipeline`, by default); tests inject fakes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from pydantic import BaseModel

from taskcraft_core.errors import ModelUnavailableError
from taskcraft_core.generate.verify import CALL_FAILED, failed_on_call
from taskcraft_core.runs.call_counts import add_steps
from taskcraft_core.runs.planning import Pipeline, PipelineFactory, RunPlanner, WorkUnit
from taskcraft_core.schema import (
    TASK_KINDS,
    EmptyUnit,
    GenerationRun,
    RunCounts,
    Task,
    UnitError,
    utcnow,
)
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

STAGES: tuple[str, ...] = TASK_KINDS  # executed in this order
# Per kind: candidates stored (accepted + rejected), near-duplicates among them, and candidates the run
# met already stored (not stored again, not counted as candidates).
OUTCOMES: tuple[str, ...] = ("candidates", "accepted", "rejected", "duplicates", "present")
# How often the coordinator writes a heartbeat and looks for a cancel, in seconds.
HEARTBEAT_INTERVAL_S = 1.0
# A "running" run whose heartbeat is older than this belongs to a process that is gone.
STALE_AFTER = timedelta(seconds=30)
# Consecutive units failing with ModelUnavailableError before the run gives up.
UNAVAILABLE_ABORT_AFTER = 3


class RunProgress(BaseModel):
    """Where a run is: units done of the current stage, and its funnel counts so far."""

    run_id: str
    done: int
    total: int
    stage: str
    counts: dict[str, int]


ProgressCallback = Callable[[RunProgress], None]


@dataclass
class RunState:
    """What the coordinator knows about its run; mirrored to the database after every unit."""

    run: GenerationRun
    done: set[str]
    funnel: dict[str, int]
    errors: dict[str, str]
    empty: dict[str, str]
    stage: str = ""
    stage_done: int = 0
    stage_total: int = 0
    # Units handed to queue workers and not finished yet (queue execution only).
    pending: set[str] = field(default_factory=set)
    user_cancelled: bool = False
    failure: str | None = None
    unavailable_streak: int = 0
    calls_by_step: dict[str, int] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    # Set to stop the units of the current stage early: on cancel, on failure, or at the stage's limit.
    halt: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self.cancel.set()
        self.halt.set()

    @classmethod
    def load(cls, run: GenerationRun) -> RunState:
        errors = {entry.unit: entry.error for entry in run.counts.errors}
        empty = {entry.unit: entry.reason for entry in run.counts.empty_units}
        counts = run.counts
        return cls(run=run, done=set(run.done_units), funnel=dict(counts.funnel), errors=errors, empty=empty,
                   stage=counts.stage, stage_done=counts.done, stage_total=counts.total, pending=set(counts.pending),
                   unavailable_streak=counts.unavailable_streak, calls_by_step=dict(counts.calls_by_step))

    def counts(self) -> RunCounts:
        return RunCounts(
            stage=self.stage, done=self.stage_done, total=self.stage_total, funnel=dict(self.funnel),
            errors=[UnitError(unit=u, error=e) for u, e in self.errors.items()],
            empty_units=[EmptyUnit(unit=u, reason=r) for u, r in self.empty.items()],
            calls_by_step=dict(self.calls_by_step),
            pending=sorted(self.pending), unavailable_streak=self.unavailable_streak,
            heartbeat=utcnow(), pid=os.getpid(), host=socket.gethostname(),
        )

    def progress(self) -> RunProgress:
        return RunProgress(run_id=self.run.id, done=self.stage_done, total=self.stage_total,
                           stage=self.stage, counts=dict(self.funnel))


def snapshot_workspace(workspace: Workspace, run: GenerationRun) -> Workspace:
    """The workspace a run executes in, inline or on a queue worker: the run's snapshot settings. The
    snapshot's endpoint is the creator's, or the last resumer's (`runs.service` records it on resume);
    `Settings.with_changes` keeps a key only with the endpoint it was configured for, so a stored base
    URL never receives someone else's key."""
    return dataclasses.replace(workspace, settings=workspace.settings.with_changes(**run.config.settings))


class Executor:
    """Runs the stages of one run with a thread pool; only this object's thread writes the run."""

    pipeline: Pipeline  # built by `execute`, so that a failing engine set-up fails the run cleanly

    def __init__(self, workspace: Workspace, run: GenerationRun, make_pipeline: PipelineFactory,
                 progress: ProgressCallback | None) -> None:
        self.workspace = workspace
        self.store = workspace.store
        self.make_pipeline = make_pipeline
        self.progress = progress
        self.state = RunState.load(run)
        request = run.config.request
        self.kinds = [stage for stage in STAGES if stage in request.kinds]
        self.limit = request.limit
        self.concurrency = int(run.config.settings["concurrency"])
        self.last_beat = 0.0

    # ---- the run ----------------------------------------------------------------------------

    def execute(self) -> None:
        self.pipeline = self.make_pipeline(self.workspace, self.state.run)
        self.planner = RunPlanner(self.store, self.state.run, self.pipeline, self.add_usage, self.state.cancel)
        if self.state.done:
            self.reindex()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"run-{self.state.run.id}") as pool:
            try:
                for stage in self.kinds:
                    if self.stopping():
                        break
                    self.run_stage(stage, self.planner.plan(stage), pool)
            except BaseException:
                # Workers still running see the event and stop early; nothing half-done is stored.
                self.state.stop()
                raise

    def reindex(self) -> None:
        """A killed process may have stored a unit's tasks but not indexed them yet."""
        if self.pipeline.index_tasks is not None:
            stored = list(self.store.iter_tasks(TaskFilter(run_ids=[self.state.run.id])))
            self.pipeline.index_tasks(self.workspace, stored)

    def stopping(self) -> bool:
        return self.state.cancel.is_set() or self.state.failure is not None

    def stage_full(self, stage: str) -> bool:
        """`limit` caps verified tasks per kind: once the stage has that many, no unit starts and the
        units in flight are stopped (left undone), so only the unit that crossed the limit adds more."""
        return self.limit is not None and self.state.funnel.get(f"{stage}_accepted", 0) >= self.limit

    def run_stage(self, stage: str, units: list[WorkUnit], pool: ThreadPoolExecutor) -> None:
        state = self.state
        state.stage, state.stage_total = stage, len(units)
        state.stage_done = sum(unit.id in state.done for unit in units)
        state.halt = threading.Event()
        if self.stopping():
            state.halt.set()
        self.beat(force=True)
        waiting = iter([unit for unit in units if unit.id not in state.done])
        in_flight: dict[Future[list[Task]], tuple[WorkUnit, Any]] = {}
        while True:
            while len(in_flight) < self.concurrency and not self.stopping() and not self.stage_full(stage):
                unit = next(waiting, None)
                if unit is None:
                    break
                context = self.pipeline.new_context(state.halt)
                in_flight[pool.submit(unit.work, context)] = (unit, context)
            if not in_flight:
                return
            finished, _ = wait(in_flight, timeout=HEARTBEAT_INTERVAL_S, return_when=FIRST_COMPLETED)
            for future in finished:
                unit, context = in_flight.pop(future)
                error = future.exception()
                self.finish_unit(unit, context, None if error else future.result(), error)
                if self.stage_full(stage):
                    state.halt.set()
            self.beat()

    # ---- recording (coordinator thread only) -------------------------------------------------

    def finish_unit(self, unit: WorkUnit, context: Any, tasks: list[Task] | None, error: BaseException | None) -> None:
        """Record a unit's outcome: its tasks (gated) and its done mark, an empty unit, or an error."""
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise error
        self.add_usage(context, unit.stage)
        if self.state.halt.is_set():
            # Stopped early (cancel, failure or limit): its output may be partial, so the unit stays
            # undone and a resume runs it again (task ids are content-derived, nothing doubles).
            self.save()
            return
        if isinstance(error, self.pipeline.empty_unit_errors):
            self.state.empty[unit.id] = str(error)
            self.state.funnel[f"{unit.stage}_empty_units"] = self.state.funnel.get(f"{unit.stage}_empty_units", 0) + 1
            self.record_tasks(unit, [])
            return
        if error is not None:
            self.record_error(unit, error)
            return
        made = [self.own(task) for task in tasks or []]
        if made and all(failed_on_call(task) for task in made):
            # Nothing of the unit got through: the endpoint failed, not the candidates. The unit is an
            # error (a resume redoes it) and counts towards the run giving up on the endpoint.
            reason = (made[-1].failure_reason or "").removeprefix(f"{CALL_FAILED}: ")
            self.record_error(unit, ModelUnavailableError(f"every candidate's model call failed; the last: {reason}"))
            return
        self.record_tasks(unit, made)

    def own(self, task: Task) -> Task:
        return task if task.run_id else task.model_copy(update={"run_id": self.state.run.id})

    def record_error(self, unit: WorkUnit, error: BaseException) -> None:
        state = self.state
        state.errors[unit.id] = f"{type(error).__name__}: {error}"
        state.funnel["unit_errors"] = len(state.errors)
        if isinstance(error, ModelUnavailableError):
            state.unavailable_streak += 1
            # A small stage whose every open unit failed this way is as dead as a long streak.
            open_units = state.stage_total - state.stage_done
            if state.unavailable_streak >= min(UNAVAILABLE_ABORT_AFTER, open_units):
                state.failure = (f"The model endpoint kept failing ({state.unavailable_streak} units in a row): "
                                 f"{error}")
                state.stop()
        self.save()

    def record_tasks(self, unit: WorkUnit, tasks: list[Task]) -> None:
        state = self.state
        state.unavailable_streak = 0
        state.errors.pop(unit.id, None)
        state.funnel["unit_errors"] = len(state.errors)
        # What the run counts is what it stores; a candidate stored before is only noted as present.
        present = self.store.present_task_ids(tasks) if tasks else set()
        new: dict[str, Task] = {}
        for task in tasks:
            if task.id in present or task.id in new:
                state.funnel[f"{task.kind}_present"] = state.funnel.get(f"{task.kind}_present", 0) + 1
            else:
                new[task.id] = task
        tasks = self.gate(list(new.values()))
        for task in tasks:
            self.count(task)
        state.done.add(unit.id)
        state.stage_done += 1
        added = self.save(tasks)
        if added and self.pipeline.index_tasks is not None:
            self.pipeline.index_tasks(self.workspace, tasks)
        if self.progress is not None:
            self.progress(state.progress())

    def gate(self, tasks: list[Task]) -> list[Task]:
        """Run each new verified candidate through the near-duplicate gate, in order, so a
        candidate is compared with every task stored before it (including this run's)."""
        if self.pipeline.gate is None:
            return tasks
        return [self.gate_one(task) if task.status == "pending" else task for task in tasks]

    def gate_one(self, task: Task) -> Task:
        # Here, not at the top: dedup (numpy, rapidfuzz) loads when a run gates, not with the Generate page.
        from taskcraft_core.curate.dedup import gate_outcome

        assert self.pipeline.gate is not None
        pair = self.pipeline.gate(self.workspace, task)
        if pair is None:
            return task
        self.state.funnel[f"{task.kind}_duplicates"] = self.state.funnel.get(f"{task.kind}_duplicates", 0) + 1
        return gate_outcome(self.workspace.settings, task, pair)

    def count(self, task: Task) -> None:
        funnel = self.state.funnel
        outcome = "accepted" if task.status == "pending" else "rejected"
        for key in (f"{task.kind}_candidates", f"{task.kind}_{outcome}"):
            funnel[key] = funnel.get(key, 0) + 1

    def add_usage(self, context: Any, stage: str = "plan") -> None:
        """A context's calls and tokens into the run; its calls by step under `stage` (a unit's
        stage, or "plan" for the planner's calls: grouping for width, choosing start pages)."""
        run = self.state.run
        run.model_calls += context.usage.calls
        run.tokens += context.usage.tokens
        add_steps(self.state.calls_by_step, stage, getattr(context.usage, "by_step", {}))

    def save(self, tasks: Sequence[Task] = ()) -> int:
        """Tasks, done units, counts and usage in one transaction; the status is left alone."""
        state = self.state
        state.run.done_units = sorted(state.done)
        state.run.counts = state.counts()
        return self.store.update_run(state.run.id, tasks, done_units=state.run.done_units,
                                     counts=state.run.counts, model_calls=state.run.model_calls,
                                     tokens=state.run.tokens)

    def beat(self, force: bool = False) -> None:
        """Heartbeat (so a dead process is noticed) and the cancel check (so one is obeyed)."""
        if not force and time.monotonic() - self.last_beat < HEARTBEAT_INTERVAL_S:
            return
        self.last_beat = time.monotonic()
        stored = self.store.get_run(self.state.run.id)
        if stored is not None and stored.status == "cancelled" and not self.state.cancel.is_set():
            self.state.user_cancelled = True
            self.state.stop()
        self.save()
        if force and self.progress is not None:
            self.progress(self.state.progress())


def looks_dead(run: GenerationRun) -> bool:
    """Whether a run marked running belongs to a process that is gone (no recent heartbeat, or its
    process on this host has ended)."""
    beat = run.counts.heartbeat
    last_sign = beat or run.started_at
    # SQLite hands datetimes back without their zone; they were written in UTC.
    if utcnow() - last_sign.replace(tzinfo=last_sign.tzinfo or UTC) > STALE_AFTER:
        return True
    pid = run.counts.pid
    return pid is not None and run.counts.host == socket.gethostname() and not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
