"""Store methods for regeneration lineage, replays and stale flags (a mixin of `Store`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, insert, select, update

from taskcraft_core.schema import Replay, TrajectoryStep
from taskcraft_core.store import tables as t


class LineageStore:
    """Regenerations, replays and the stale flag; tool sequences for structural duplicates."""

    engine: Engine

    def regenerations_of(self, task_id: str) -> list[str]:
        """Ids of the tasks regenerated from this one, oldest first."""
        query = select(t.tasks.c.id).where(t.tasks.c.regenerated_from == task_id).order_by(t.tasks.c.created_at)
        with self.engine.connect() as c:
            return list(c.scalars(query))

    def add_replays(self, replays: Sequence[Replay]) -> None:
        """Store replays and set each task's stale flag from its replay (in one transaction)."""
        if not replays:
            return
        with self.engine.begin() as c:
            c.execute(insert(t.replays), [
                replay.model_dump(exclude={"id", "trajectory"})
                | {"trajectory": [step.model_dump() for step in replay.trajectory]} for replay in replays])
            for holds in (True, False):
                ids = [replay.task_id for replay in replays if replay.holds is holds]
                if ids:
                    c.execute(update(t.tasks).where(t.tasks.c.id.in_(ids)).values(stale=not holds))

    def replays_for(self, task_id: str) -> list[Replay]:
        """A task's replays, newest first."""
        query = select(t.replays).where(t.replays.c.task_id == task_id).order_by(t.replays.c.id.desc())
        with self.engine.connect() as c:
            rows = [dict(row._mapping) for row in c.execute(query)]
        return [Replay(**row | {"trajectory": [TrajectoryStep(**s) for s in row["trajectory"]]}) for row in rows]

    def stale_task_ids(self, task_ids: Sequence[str] | None = None) -> set[str]:
        """Ids of stale tasks (among the given ones)."""
        query = select(t.tasks.c.id).where(t.tasks.c.stale.is_(True))
        if task_ids is not None:
            query = query.where(t.tasks.c.id.in_(task_ids))
        with self.engine.connect() as c:
            return set(c.scalars(query))

    def tool_sequences(self, task_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Each task's tool calls in order (the tools its agent called, by name); () without any."""
        query = (select(t.trajectory_steps.c.task_id, t.trajectory_steps.c.tool)
                 .where(t.trajectory_steps.c.task_id.in_(task_ids), t.trajectory_steps.c.type == "ai",
                        t.trajectory_steps.c.tool.is_not(None))
                 .order_by(t.trajectory_steps.c.task_id, t.trajectory_steps.c.position))
        sequences: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
        with self.engine.connect() as c:
            for task_id, tool in c.execute(query):
                sequences[task_id].append(tool)
        return {task_id: tuple(tools) for task_id, tools in sequences.items()}
