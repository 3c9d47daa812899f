"""What a run's candidate finds in the database: new, already present, or a failed verification it
supersedes. A `failed_verification` row nobody has reviewed is a machine verdict, not a decision: when
a later run verifies the same candidate (same content-derived id), the new outcome replaces it. Such
failures are what an unusable environment leaves (a missing index, an endpoint that was down)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, select
from sqlalchemy.engine import Connection

from taskcraft_core.schema import Task
from taskcraft_core.store import tables as t

FAILED = "failed_verification"


class TaskOutcomeStore:
    """Which candidates a run would store (mixed into `Store`)."""

    engine: Engine

    def present_task_ids(self, tasks: Sequence[Task]) -> set[str]:
        """Ids of the candidates already stored that storing them would leave as they are."""
        with self.engine.connect() as c:
            stored = set(c.scalars(select(t.tasks.c.id).where(t.tasks.c.id.in_([task.id for task in tasks]))))
            return stored - superseded_failures(c, tasks)


def superseded_failures(c: Connection, tasks: Sequence[Task]) -> set[str]:
    """Ids of stored, unreviewed failed verifications that these candidates verify."""
    verified = [task.id for task in tasks if task.status != FAILED]
    if not verified:
        return set()
    query = select(t.tasks.c.id).where(t.tasks.c.id.in_(verified), t.tasks.c.status == FAILED,
                                       t.tasks.c.generated_status == FAILED, t.tasks.c.latest_review_id.is_(None))
    return set(c.scalars(query))


def drop_superseded_failures(c: Connection, tasks: Sequence[Task]) -> set[str]:
    """Delete the failed verifications these candidates supersede (they are inserted anew after)."""
    ids = superseded_failures(c, tasks)
    if ids:
        for table in (t.trajectory_steps, t.verifications):
            c.execute(delete(table).where(table.c.task_id.in_(ids)))
        c.execute(delete(t.tasks).where(t.tasks.c.id.in_(ids)))
    return ids
