"""Planning a run's stages into work units with stable ids: `atomic:<chunk id>`, `depth:<task id>`,
`width:<sorted task ids>`, `explore:<start document id>`. The same run plans the same units again
on resume, so done units are skipped and nothing is made twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.runs.spread import round_robin
from taskcraft_core.schema import Chunk, Document, GenerationRun, Task
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace

# Tasks the depth and width stages start from: verified atomic tasks nobody rejected.
BASE_STATUSES = ["pending", "accepted"]


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
    (a chunk, a task, the tasks of a width group in their order, a start page): `RunPlanner.unit`
    rebuilds the same unit from them in another process (queue workers)."""

    id: str
    stage: str
    work: Callable[[Any], list[Task]]
    parts: tuple[str, ...] = ()


class RunPlanner:
    """Turns each stage of one run into its work units; the model calls planning makes (grouping
    for width, choosing start pages) are counted through `record_usage`."""

    def __init__(self, store: Store, run: GenerationRun, pipeline: Pipeline,
                 record_usage: Callable[[Any], None], cancel: threading.Event) -> None:
        self.store, self.run, self.pipeline, self.record_usage = store, run, pipeline, record_usage
        self.cancel = cancel  # the run's cancel: planning calls stop with it
        self.load_document = lru_cache(maxsize=8)(self.store.get_document)

    def plan(self, stage: str) -> list[WorkUnit]:
        plans = {"atomic": self.plan_atomic, "depth": self.plan_depth, "width": self.plan_width,
                 "explore": self.plan_explore}
        return plans[stage]()

    def plan_atomic(self) -> list[WorkUnit]:
        return round_robin([[self.atomic_unit(chunk) for chunk in self.store.get_chunks(document_id)]
                            for document_id in self.run.config.document_ids])

    def atomic_unit(self, chunk: Chunk) -> WorkUnit:
        def work(context: Any) -> list[Task]:
            document = self.load_document(chunk.document_id)
            if document is None:
                raise TaskCraftError(f"Document {chunk.document_id} was deleted during the run.")
            return self.pipeline.atomic(document, chunk, context)

        return WorkUnit(f"atomic:{chunk.id}", "atomic", work, (chunk.id,))

    def base_tasks(self) -> list[Task]:
        """Verified atomic tasks of the run's documents (from this run or earlier ones), by id so
        that a resumed run plans the same units."""
        task_filter = TaskFilter(kinds=["atomic"], statuses=BASE_STATUSES,
                                 document_ids=self.run.config.document_ids)
        return sorted(self.store.list_tasks(task_filter, limit=None, with_trajectory=True), key=lambda t: t.id)

    def plan_depth(self) -> list[WorkUnit]:
        return [self.depth_unit(task) for task in self.base_tasks()]

    def depth_unit(self, task: Task) -> WorkUnit:
        return WorkUnit(f"depth:{task.id}", "depth", lambda context: self.pipeline.depth(task, context), (task.id,))

    def plan_width(self) -> list[WorkUnit]:
        context = self.pipeline.new_context(self.cancel)
        groups = self.pipeline.group_for_width(self.base_tasks(), context)
        self.record_usage(context)
        return [self.width_unit(group) for group in groups]

    def width_unit(self, group: list[Task]) -> WorkUnit:
        unit_id = "width:" + ",".join(sorted(task.id for task in group))
        return WorkUnit(unit_id, "width", lambda ctx: [self.pipeline.width(group, ctx)],
                        tuple(task.id for task in group))

    def run_documents(self) -> list[Document]:
        return [d for d in map(self.store.get_document, self.run.config.document_ids) if d is not None]

    def plan_explore(self) -> list[WorkUnit]:
        """A unit per start page; each explores all of the run's documents (its environment)."""
        documents = self.run_documents()
        context = self.pipeline.new_context(self.cancel)
        starts = self.pipeline.explore_starts(documents, context)
        self.record_usage(context)
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
