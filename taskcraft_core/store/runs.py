"""Generation runs: the run records, and a unit's tasks stored with its progress in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, insert, select, update

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import (
    GenerationRun,
    Task,
)
from taskcraft_core.store import tables as t
from taskcraft_core.store.task_outcomes import drop_superseded_failures
from taskcraft_core.store.tasks import insert_new_tasks


class RunStore:
    """Reads and writes of generation runs."""

    engine: Engine

    def save_run(self, run: GenerationRun) -> None:
        """Insert or update a run record."""
        values = run.model_dump() | _json_columns(config=run.config, counts=run.counts)
        with self.engine.begin() as c:
            if c.execute(update(t.runs).where(t.runs.c.id == run.id).values(values)).rowcount == 0:
                c.execute(insert(t.runs).values(values))

    def get_run(self, run_id: str) -> GenerationRun | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        return GenerationRun(**row._mapping) if row else None

    def list_runs(self, limit: int = 50) -> list[GenerationRun]:
        query = select(t.runs).order_by(t.runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as c:
            return [GenerationRun(**row._mapping) for row in c.execute(query)]

    def update_run(self, run_id: str, tasks: Sequence[Task] = (), **values: Any) -> int:
        """Change only the given columns of a run and store tasks (existing ids skipped, except failed
        verifications the tasks supersede: see store/task_outcomes.py), in one transaction: a finished
        work unit's tasks and its mark in `done_units` land together or not at all, and a cancel
        written by someone else is never overwritten. Returns tasks added."""
        with self.engine.begin() as c:
            # The write comes first so the transaction holds the write lock before it reads.
            values = values | _json_columns(**{k: v for k, v in values.items() if isinstance(v, BaseModel)})
            if c.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values)).rowcount == 0:
                raise TaskCraftError(f"No generation run with id {run_id}.", "List runs with `runs`.")
            if not tasks:
                return 0
            drop_superseded_failures(c, tasks)
            return insert_new_tasks(c, tasks)


    def claim_run(self, run_id: str, claimable: Callable[[GenerationRun], bool], **values: Any) -> bool:
        """Change the given columns of a run only when `claimable` says yes to the run as stored, in one
        transaction holding the run's write lock: of two claims at once, the second sees the first's
        change. Returns whether the run was claimed."""
        with self.engine.begin() as c:
            # A write that changes nothing takes the lock before the read, as in update_run.
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(status=t.runs.c.status))
            row = c.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            if row is None or not claimable(GenerationRun(**row._mapping)):
                return False
            values = values | _json_columns(**{k: v for k, v in values.items() if isinstance(v, BaseModel)})
            c.execute(update(t.runs).where(t.runs.c.id == run_id).values(**values))
            return True


def _json_columns(**records: BaseModel) -> dict[str, Any]:
    """Typed parts of a run (config, counts) as the JSON their columns hold."""
    return {name: record.model_dump(mode="json") for name, record in records.items()}
