"""Live-website explorations: the steps of a run's exploration trajectory, with their screenshots."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, delete, insert, select

from taskcraft_core.schema import ExplorationStep
from taskcraft_core.store import tables as t


class ExplorationStore:
    """Reads and writes of exploration steps (one row per step of a run, in order)."""

    engine: Engine

    def add_exploration_steps(self, steps: Sequence[ExplorationStep]) -> int:
        """Store steps; a step whose (run, position) is stored already is replaced (a resumed
        exploration rewrites nothing else). Returns how many were written."""
        if not steps:
            return 0
        with self.engine.begin() as c:
            for step in steps:
                c.execute(delete(t.exploration_steps).where(t.exploration_steps.c.run_id == step.run_id,
                                                            t.exploration_steps.c.position == step.position))
            c.execute(insert(t.exploration_steps), [step.model_dump() for step in steps])
        return len(steps)

    def exploration_steps(self, run_id: str, *, screenshots: bool = True) -> list[ExplorationStep]:
        """A run's exploration steps in order; without screenshots when `screenshots` is False (a
        list that only shows URLs and actions need not read the images)."""
        columns = [c for c in t.exploration_steps.c if screenshots or c.name != "screenshot"]
        query = select(*columns).where(t.exploration_steps.c.run_id == run_id).order_by(
            t.exploration_steps.c.position)
        with self.engine.connect() as c:
            return [ExplorationStep(**row._mapping) for row in c.execute(query)]

    def exploration_screenshot(self, run_id: str, position: int) -> bytes | None:
        """The JPEG screenshot of one step (None when the step has none or does not exist)."""
        query = select(t.exploration_steps.c.screenshot).where(t.exploration_steps.c.run_id == run_id,
                                                               t.exploration_steps.c.position == position)
        with self.engine.connect() as c:
            return c.scalar(query)
