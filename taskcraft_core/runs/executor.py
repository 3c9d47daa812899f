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
import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from taskcraft_core.errors import ModelUnavailableError, TaskCraftError
from taskcraft_core.schema import Chunk, Document, GenerationRun, Task, utcnow
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

STAGES: tuple[str, ...] = ("atomic", "depth", "width", "explore")
OUTCOMES: tuple[str, ...] = ("candidates", "accepted", "rejected", "duplicates")
# How often the coordinator writes a heartbeat and looks for a cancel, in seconds.
HEARTBEAT_INTERVAL_S = 1.0
# Consecutive units failing with ModelUnavailableError before the run gives up.
UNAVAILABLE_ABORT_AFTER = 3
# Tasks the depth and width stages start from: verified atomic tasks nobody rejected.
BASE_STATUSES = ["pending", "accepted"]


class RunProgress(BaseModel):
    """Where a run is: units done of the current stage, and its funnel counts so far."""

    run_id: str
    done: int
    total: int
    stage: str
    counts: dict[str, int]


ProgressCallback = Callable[[RunProgress], None]


@dataclass(frozen=True)
class Pipeline:
    """The work a run orchestrates, one function per stage. `new_context(cancel)` makes a fresh
    context for one unit (its own `usage`, sharing the run's engine), so calls are counted per unit."""

    new_context: Callable[[threading.Event], Any]
    atomic: Callable[[Document, Chunk, Any], list[Task]]
    depth: Callable[[Task, Any], list[Task]]
    group_for_width: Callable[[Sequence[Task], Any], list[list[Task]]]
    width: Callable[[list[Task], Any], Task]
    # Exploration: the start pages among the run's documents (a unit each), and the tasks written
    # from exploring the documents from one start page.
    explore_starts: Callable[[Sequence[Document], Any], list[Document]]
    explore: Callable[[Sequence[Document], Document, Any], list[Task]]
    # The near-duplicate gate and the task index (dedup.py); None leaves tasks ungated.
    gate: Callable[[Workspace, Task], Any] | None = None
    index_tasks: Callable[[Workspace, list[Task]], None] | None = None
    # Errors meaning "this unit has nothing to give" (a chunk without facts, an exploration that
    # offers no task): the unit is done, its reason noted, and it is not a failure to retry.
    empty_unit_errors: tuple[type[BaseException], ...] = ()


PipelineFactory = Callable[[Workspace, GenerationRun], Pipeline]


@dataclass(frozen=True)
class WorkUnit:
    """One piece of a run that is done entirely or not at all. `parts` are the ids it is built from
    (a chunk, a task, the tasks of a width group in their order, a start page): `Executor.unit`
    rebuilds the same unit from them in another process (queue workers)."""

    id: str
    stage: str
    work: Callable[[Any], list[Task]]
    parts: tuple[str, ...] = ()


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
    cancel: threading.Event = field(default_factory=threading.Event)
    # Set to stop the units of the current stage early: on cancel, on failure, or at the stage's limit.
    halt: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self.cancel.set()
        self.halt.set()

    @classmethod
    def load(cls, run: GenerationRun) -> RunState:
        errors = {entry["unit"]: entry["error"] for entry in run.counts.get("errors", [])}
        empty = {entry["unit"]: entry["reason"] for entry in run.counts.get("empty_units", [])}
        counts = run.counts
        return cls(run=run, done=set(run.done_units), funnel=dict(counts.get("funnel", {})), errors=errors,
                   empty=empty, stage=counts.get("stage", ""), stage_done=counts.get("done", 0),
                   stage_total=counts.get("total", 0), pending=set(counts.get("pending", [])),
                   unavailable_streak=counts.get("unavailable_streak", 0))

    def counts(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "done": self.stage_done, "total": self.stage_total,
            "funnel": dict(self.funnel), "errors": [{"unit": u, "error": e} for u, e in self.errors.items()],
            "empty_units": [{"unit": u, "reason": r} for u, r in self.empty.items()],
            "pending": sorted(self.pending), "unavailable_streak": self.unavailable_streak,
            "heartbeat": utcnow().isoformat(), "pid": os.getpid(), "host": socket.gethostname(),
        }

    def progress(self) -> RunProgress:
        return RunProgress(run_id=self.run.id, done=self.stage_done, total=self.stage_total,
                           stage=self.stage, counts=dict(self.funnel))


def snapshot_workspace(workspace: Workspace, run: GenerationRun) -> Workspace:
    """The workspace with the run's snapshot settings: a run (and its resume) executes as configured."""
    return dataclasses.replace(workspace, settings=workspace.settings.with_changes(**run.config["settings"]))


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
        request = run.config["request"]
        self.kinds = [stage for stage in STAGES if stage in request["kinds"]]
        self.limit: int | None = request.get("limit")
        self.concurrency = int(run.config["settings"]["concurrency"])
        self.last_beat = 0.0

    # ---- the run ----------------------------------------------------------------------------

    def execute(self) -> None:
        self.pipeline = self.make_pipeline(self.workspace, self.state.run)
        if self.state.done:
            self.reindex()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"run-{self.state.run.id}") as pool:
            try:
                for stage in self.kinds:
                    if self.stopping():
                        break
                    self.run_stage(stage, self.plan(stage), pool)
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

    # ---- planning ---------------------------------------------------------------------------

    def plan(self, stage: str) -> list[WorkUnit]:
        plans = {"atomic": self.plan_atomic, "depth": self.plan_depth, "width": self.plan_width,
                 "explore": self.plan_explore}
        return plans[stage]()

    def plan_atomic(self) -> list[WorkUnit]:
        return [self.atomic_unit(chunk) for document_id in self.state.run.config["document_ids"]
                for chunk in self.store.get_chunks(document_id)]

    def atomic_unit(self, chunk: Chunk) -> WorkUnit:
        def work(context: Any) -> list[Task]:
            document = self.load_document(chunk.document_id)
            if document is None:
                raise TaskCraftError(f"Document {chunk.document_id} was deleted during the run.")
            return self.pipeline.atomic(document, chunk, context)

        return WorkUnit(f"atomic:{chunk.id}", "atomic", work, (chunk.id,))

    @functools.cached_property
    def load_document(self) -> Callable[[str], Document | None]:
        return lru_cache(maxsize=8)(self.store.get_document)

    def base_tasks(self) -> list[Task]:
        """Verified atomic tasks of the run's documents (from this run or earlier ones), by id so
        that a resumed run plans the same units."""
        task_filter = TaskFilter(kinds=["atomic"], statuses=BASE_STATUSES,
                                 document_ids=self.state.run.config["document_ids"])
        return sorted(self.store.list_tasks(task_filter, limit=None, with_trajectory=True), key=lambda t: t.id)

    def plan_depth(self) -> list[WorkUnit]:
        return [self.depth_unit(task) for task in self.base_tasks()]

    def depth_unit(self, task: Task) -> WorkUnit:
        return WorkUnit(f"depth:{task.id}", "depth", lambda context: self.pipeline.depth(task, context), (task.id,))

    def plan_width(self) -> list[WorkUnit]:
        context = self.pipeline.new_context(self.state.cancel)
        groups = self.pipeline.group_for_width(self.base_tasks(), context)
        self.add_usage(context)
        return [self.width_unit(group) for group in groups]

    def width_unit(self, group: list[Task]) -> WorkUnit:
        unit_id = "width:" + ",".join(sorted(task.id for task in group))
        return WorkUnit(unit_id, "width", lambda ctx: [self.pipeline.width(group, ctx)],
                        tuple(task.id for task in group))

    def run_documents(self) -> list[Document]:
        return [d for d in map(self.store.get_document, self.state.run.config["document_ids"]) if d is not None]

    def plan_explore(self) -> list[WorkUnit]:
        """A unit per start page; each explores all of the run's documents (its environment)."""
        documents = self.run_documents()
        context = self.pipeline.new_context(self.state.cancel)
        starts = self.pipeline.explore_starts(documents, context)
        self.add_usage(context)
        return [self.explore_unit(documents, start) for start in starts]

    def explore_unit(self, documents: list[Document], start: Document) -> WorkUnit:
        return WorkUnit(f"explore:{start.id}", "explore", lambda ctx: self.pipeline.explore(documents, start, ctx),
                        (start.id,))

    def unit(self, stage: str, parts: Sequence[str]) -> WorkUnit:
        """The unit `plan(stage)` made from these parts, rebuilt from the database (by a queue worker)."""
        if stage == "atomic":
            chunk = self.store.get_chunk(parts[0])
            if chunk is None:
                raise TaskCraftError(f"Chunk {parts[0]} was deleted during the run.")
            return self.atomic_unit(chunk)
        if stage == "explore":
            start = self.store.get_document(parts[0])
            if start is None:
                raise TaskCraftError(f"Document {parts[0]} was deleted during the run.")
            return self.explore_unit(self.run_documents(), start)
        found = {task.id: task for task in self.store.get_tasks(list(parts), with_trajectory=True)}
        missing = [task_id for task_id in parts if task_id not in found]
        if missing:
            raise TaskCraftError(f"Tasks {', '.join(missing)} were deleted during the run.")
        return self.depth_unit(found[parts[0]]) if stage == "depth" else self.width_unit([found[p] for p in parts])

    # ---- recording (coordinator thread only) -------------------------------------------------

    def finish_unit(self, unit: WorkUnit, context: Any, tasks: list[Task] | None, error: BaseException | None) -> None:
        """Record a unit's outcome: its tasks (gated) and its done mark, an empty unit, or an error."""
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise error
        self.add_usage(context)
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
        self.record_tasks(unit, [self.own(task) for task in tasks or []])

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
        tasks = self.gate(tasks)
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
        stored = {task.id for task in self.store.get_tasks([t.id for t in tasks], with_trajectory=False)}
        return [self.gate_one(task) if task.status == "pending" and task.id not in stored else task
                for task in tasks]

    def gate_one(self, task: Task) -> Task:
        assert self.pipeline.gate is not None
        pair = self.pipeline.gate(self.workspace, task)
        if pair is None:
            return task
        other = pair.b if pair.a == task.id else pair.a
        self.state.funnel[f"{task.kind}_duplicates"] = self.state.funnel.get(f"{task.kind}_duplicates", 0) + 1
        if self.workspace.settings.duplicate_action == "skip":
            return task.model_copy(update={"status": "duplicate", "failure_reason": f"near-duplicate of {other}"})
        # "flag": the task stays in the review queue, with the suspicion written on it.
        return task.model_copy(update={"failure_reason": f"possible near-duplicate of {other}"})

    def count(self, task: Task) -> None:
        funnel = self.state.funnel
        outcome = "accepted" if task.status == "pending" else "rejected"
        for key in (f"{task.kind}_candidates", f"{task.kind}_{outcome}"):
            funnel[key] = funnel.get(key, 0) + 1

    def add_usage(self, context: Any) -> None:
        run = self.state.run
        run.model_calls += context.usage.calls
        run.tokens += context.usage.tokens

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
