"""An index far out of step with the database (tasks imported without vectors) is caught up in the
background: the app's first page does not wait for it, searches say so, and it completes. A small
gap is repaired before the page; one process repairs while the others wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from taskcraft_core import cli
from taskcraft_core.cli import main
from taskcraft_core.index.consistency import REPAIR_LOCK, check_index
from taskcraft_core.index.vectors import TASKS, VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace, open_workspace_catching_up
from tests.test_pages import APP, TIMEOUT, seed

OUT_OF_STEP = 2_000


@pytest.fixture
def embedding_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Real embeddings that start only once the test opens the gate: what happens before it, happened
    without waiting for any vector."""
    gate = threading.Event()
    embed = VectorIndex.embed

    def gated(index: VectorIndex, texts: Sequence[str]) -> np.ndarray:
        assert gate.wait(60), "the embedding gate was never opened"
        return embed(index, texts)

    monkeypatch.setattr(VectorIndex, "embed", gated)
    yield gate
    gate.set()  # a catch-up thread still running finishes instead of hanging


def indexed_tasks(home: Path) -> int:
    return VectorIndex.open(Settings(home=home)).collection(TASKS).count()


def wait_for_tasks_indexed(home: Path, expected: int, timeout_s: float = 90) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := indexed_tasks(home)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


def test_review_renders_before_a_large_catch_up_which_completes_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedding_gate: threading.Event,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TASKCRAFT_HOME", str(home))
    seed(Store(Settings(home=home).resolved_database_url), OUT_OF_STEP)  # tasks and a chunk, no vectors

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("app_pages/review.py").run()  # would time out waiting at the gate if it repaired first
    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert "**Question**  \nWhen did \\*observatory\\* 0 open?" in [m.value for m in at.markdown]
    assert indexed_tasks(home) == 0

    at.switch_page("app_pages/duplicates.py").run()
    assert not at.exception, at.exception
    [note] = [info.value for info in at.info if "catching up" in info.value]
    assert "near-duplicate search opens when it is done" in note
    assert at.button(key="duplicates_find").disabled
    at.switch_page("app_pages/generate.py").run()
    [note] = [info.value for info in at.info if "catching up" in info.value]
    assert note.endswith("a run started now begins verifying when it is done.")
    at.switch_page("app_pages/duplicates.py").run()

    embedding_gate.set()
    assert wait_for_tasks_indexed(home, OUT_OF_STEP) == OUT_OF_STEP
    workspace = Workspace.open(Settings(home=home))
    assert all(check.in_step for check in check_index(workspace))
    time.sleep(0.5)  # the thread marks the status after its last write
    at.run()
    assert not [info.value for info in at.info if "catching up" in info.value]
    assert not at.button(key="duplicates_find").disabled


def test_a_small_gap_is_repaired_before_the_workspace_is_handed_out(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    seed(Store(settings.resolved_database_url), 5)
    workspace, catch_up = open_workspace_catching_up(settings, inline_limit=10)
    assert catch_up.status.state == "in_step"
    assert workspace.index.collection(TASKS).count() == 5
    assert [check.in_step for check in check_index(workspace)] == [True, True]


def test_a_large_gap_is_caught_up_in_the_background_with_its_progress(
    tmp_path: Path, embedding_gate: threading.Event,
) -> None:
    settings = Settings(home=tmp_path / "home")
    seed(Store(settings.resolved_database_url), 30)
    workspace, catch_up = open_workspace_catching_up(settings, inline_limit=10)  # returns with the gate shut
    assert catch_up.status.state == "running"
    assert workspace.index.collection(TASKS).count() == 0
    catch_up.start()  # a second start (another session) starts nothing
    embedding_gate.set()
    assert catch_up.wait(60).state == "in_step"
    assert workspace.index.collection(TASKS).count() == 30


def test_while_another_process_holds_the_repair_this_one_waits_in_the_background(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    seed(Store(settings.resolved_database_url), 5)
    other = Workspace.open(settings)  # another process: its own connection and its own lock file handle
    with other.store.maintenance_lock(REPAIR_LOCK) as held:
        assert held
        workspace, catch_up = open_workspace_catching_up(settings, inline_limit=10)  # does not block
        time.sleep(0.3)
        assert catch_up.status.state == "waiting"  # even a small gap is not repaired by two at once
        assert workspace.index.collection(TASKS).count() == 0
        with workspace.store.maintenance_lock(REPAIR_LOCK, wait=False) as also_held:
            assert not also_held
    assert catch_up.wait(60).state == "in_step"  # the holder left it undone: this process repairs it
    assert workspace.index.collection(TASKS).count() == 5


def test_a_cli_command_waits_for_a_repair_in_another_process_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(home=tmp_path / "home")
    seed(Store(settings.resolved_database_url), 5)
    monkeypatch.setenv("TASKCRAFT_HOME", str(settings.home))
    other = Workspace.open(settings)
    held, release = threading.Event(), threading.Event()

    def repair_elsewhere() -> None:
        with other.store.maintenance_lock(REPAIR_LOCK):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=repair_elsewhere)
    holder.start()
    assert held.wait(10)
    said = cli.print_index_waiting

    def say_then_release() -> None:  # the holder finishes once the command has said it waits
        said()
        release.set()

    monkeypatch.setattr(cli, "print_index_waiting", say_then_release)
    assert main(["dedup", "--json"]) == 0
    holder.join()
    assert ("another process is bringing the vector index in step with the database; waiting for it"
            in capsys.readouterr().err.splitlines())
    assert indexed_tasks(settings.home) == 5  # then it found the gap still open and closed it


def test_a_task_stored_and_indexed_while_a_repair_reads_the_database_keeps_its_vector(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taskcraft_core.index.consistency import ensure_index
    from taskcraft_core.index.task_vectors import index_tasks
    from tests.test_pages import make_task

    settings = Settings(home=tmp_path / "home")
    seed(Store(settings.resolved_database_url), 3)
    workspace = Workspace.open(settings)
    workspace.index.collection(TASKS).delete(ids=["task0"])  # out of step: a repair will run
    list_task_ids = Store.list_task_ids

    def meanwhile_another_writer(store: Store, *args: object, **kwargs: object) -> list[str]:
        ids = list_task_ids(store, *args, **kwargs)  # what the repair reads ...
        late = make_task(9)  # ... then someone stores and indexes a task, as imports and runs do
        store.add_tasks([late])
        index_tasks(workspace, [late])
        monkeypatch.setattr(Store, "list_task_ids", list_task_ids)
        return ids

    monkeypatch.setattr(Store, "list_task_ids", meanwhile_another_writer)
    ensure_index(workspace)
    assert sorted(workspace.index.task_ids()) == ["task0", "task1", "task2", "task9"]
