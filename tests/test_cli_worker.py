"""Misuse of the queue commands is refused with a clear message and exit 1, before anything is stored
(the queue itself is tested on a real PostgreSQL server in test_queue.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskcraft_core.cli import main
from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(("arguments", "message"), [
    (["--concurrency", "0"], "error: --concurrency must be between 1 and 64, not 0"),
    (["--stalled-after", "-1"], "error: --stalled-after must be positive, not -1.0"),
    ([], "error: Queue workers need a PostgreSQL database, not sqlite."),
])
def test_worker_misuse_is_refused(home: Path, capsys: pytest.CaptureFixture[str], arguments: list[str],
                                  message: str) -> None:
    assert main(["worker", *arguments]) == 1
    assert capsys.readouterr().err.splitlines()[0].startswith(message)


def test_no_wait_needs_queue_workers_and_the_queue_needs_postgresql(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    workspace = Workspace.open(Settings(home=home))
    ingest_locations([str(sample_corpus_path() / "ada_merrow.md")], workspace)
    assert main(["generate", "--kinds", "atomic", "--no-wait"]) == 1
    assert "--no-wait needs queue workers (TASKCRAFT_WORKERS=queue)" in capsys.readouterr().err
    monkeypatch.setenv("TASKCRAFT_WORKERS", "queue")
    assert main(["generate", "--kinds", "atomic", "--no-wait"]) == 1
    assert "Queue workers need a PostgreSQL database, not sqlite" in capsys.readouterr().err
    assert main(["cancel", "nosuchrun"]) == 1
    assert "No generation run with id nosuchrun." in capsys.readouterr().err
