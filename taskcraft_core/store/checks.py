"""The pre-review checks stored on tasks: rewrite them, and filter tasks by them.

`tasks.checks` is JSON (check name -> detail); a task is flagged by a check when its name is a key.
Filtering matches the key in the JSON text (`"name":`), which works the same on SQLite and PostgreSQL;
a quote inside a detail is escaped in JSON, so a detail can never look like a key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Text, and_, bindparam, cast, or_, update

from taskcraft_core.store import tables as t


def flagged_condition(names: Sequence[str]) -> Any:
    """Tasks flagged by any of these checks; 'any' stands for every check."""
    column = t.tasks.c.checks
    text = cast(column, Text)
    if "any" in names:
        return and_(column.is_not(None), text.like('%"%":%'))
    return or_(*[text.like(f'%"{name}":%') for name in names])


class CheckStore:
    """Store methods for the checks (mixed into `Store`)."""

    engine: Engine

    def set_task_checks(self, checks: Mapping[str, Mapping[str, str]]) -> int:
        """Replace the checks of these tasks (task id -> flagged checks); returns the tasks updated."""
        if not checks:
            return 0
        statement = update(t.tasks).where(t.tasks.c.id == bindparam("task_id")).values(checks=bindparam("flags"))
        with self.engine.begin() as c:
            rows = [{"task_id": task_id, "flags": dict(flags)} for task_id, flags in checks.items()]
            result = c.execute(statement, rows)
        return int(result.rowcount or 0)
