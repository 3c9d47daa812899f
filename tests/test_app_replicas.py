"""Two app processes on one PostgreSQL server and one Chroma server (the team deployment's replicas):
a decision made in one is seen by the other, and two reviewers deciding one task at once get a
conflict, not a lost update — across processes, not only across threads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskcraft_core.store import Store
from tests.servers import REPO, chroma_server, postgres_server, studio_env
from tests.test_pages import seed

pytestmark = pytest.mark.slow


class AppProcess:
    """tests/app_process.py in a subprocess: the real app, driven line by line."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, str(REPO / "tests" / "app_process.py")], cwd=REPO,
                                        env=studio_env(home, env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.answer() == {"ready": True}

    def answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the app process exited with {self.process.wait()}"
        return json.loads(line)

    def send(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        state: dict[str, Any] = self.answer()
        assert state["exception"] == [], state
        return state

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def team_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    with postgres_server() as database_url, chroma_server() as chroma_url:
        yield {"TASKCRAFT_DATABASE_URL": database_url, "TASKCRAFT_CHROMA_URL": chroma_url}


def test_two_app_processes_share_decisions_and_conflicts(team_env: dict[str, str], tmp_path: Path) -> None:
    store = Store(team_env["TASKCRAFT_DATABASE_URL"])
    seed(store, n=2)
    first, second = AppProcess(tmp_path / "app1", team_env), AppProcess(tmp_path / "app2", team_env)
    try:
        assert first.send("open ana")["card"] == second.send("open ben")["card"] == "task0"
        assert first.send("click review_accept")["card"] == "task1"
        # ben still sees task0 as it was when his page loaded; his rejection meets ana's acceptance.
        conflict = second.send("click review_reject")
        assert any("changed since the state this decision was made on" in warning and "ana recorded accept" in
                   warning for warning in conflict["warnings"]), conflict
        task = store.get_task("task0")
        assert task is not None and task.status == "accepted"
        assert [(r.reviewer, r.decision) for r in store.reviews_for("task0")] == [("ana", "accept")]
        # Reloading shows ben the newest decision; deciding now builds on ana's, it is no conflict.
        assert second.send("click review_reload") == {"exception": [], "card": "task0", "warnings": []}
        assert second.send("click review_accept")["warnings"] == []
        assert [(r.reviewer, r.decision) for r in store.reviews_for("task0")] == [("ana", "accept"), ("ben", "accept")]
        assert {t.id: t.status for t in store.list_tasks()} == {"task0": "accepted", "task1": "pending"}
    finally:
        first.close()
        second.close()
