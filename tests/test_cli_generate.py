"""`generate`, `generate --resume` and `runs` on the sample corpus with the offline engine, including
a real process killed with SIGKILL mid-run and resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskcraft_core.cli import main
from taskcraft_core.runs.service import RunRequest, create_run, execute_run, interrupted_runs, run_summary
from taskcraft_core.workspace import Workspace
from tests.test_run_method import sample_workspace

REPO = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"run_id", "candidates", "accepted", "rejected", "already_present", "by_kind", "model_calls",
                "calls", "errors", "empty_units", "status", "error"}


def document_ids(workspace: Workspace, *titles: str) -> list[str]:
    by_title = {summary.title: summary.id for summary in workspace.store.list_documents()}
    return [by_title[title] for title in titles]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_generate_json_prints_one_object_and_a_progress_bar(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = sample_workspace(home)
    [ada] = document_ids(workspace, "Ada Merrow")
    code = main(["generate", "--engine", "offline", "--kinds", "atomic", "--documents", ada, "--limit", "2",
                 "--concurrency", "1", "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    assert set(summary) == SUMMARY_KEYS
    run = workspace.store.get_run(summary["run_id"])
    assert run is not None and run.status == "completed"
    assert run.done_units == [f"atomic:{ada}:0"]  # the first chunk already made 2 verified tasks
    assert summary == run_summary(run).model_dump()
    assert summary["accepted"] >= 2 and summary["candidates"] == summary["accepted"] + summary["rejected"]
    assert workspace.store.count_tasks() == summary["candidates"]
    assert f"run {run.id} (resume with: generate --resume {run.id})" in err
    # Not a terminal: one line per stage start and per tenth of the stage, no carriage returns.
    assert "atomic  [..............................] 0/2 units  0 verified, 0 rejected\n" in err
    assert f"atomic  [{'#' * 15}{'.' * 15}] 1/2 units  {summary['accepted']} verified" in err and "\r" not in err


def test_generate_explore_reports_the_kind_in_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = sample_workspace(home)
    [ada] = document_ids(workspace, "Ada Merrow")
    code = main(["generate", "--engine", "offline", "--kinds", "explore", "--limit", "2", "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 0 and set(summary) == SUMMARY_KEYS
    # limit 2 over four guideline families: one candidate each, all verified
    assert summary["by_kind"] == {
        "explore": {"candidates": 4, "accepted": 4, "rejected": 0, "duplicates": 0, "present": 0}}
    run = workspace.store.get_run(summary["run_id"])
    assert run is not None and run.done_units == [f"explore:{ada}"] and summary == run_summary(run).model_dump()
    assert {(t.kind, t.engine, t.status) for t in workspace.store.list_tasks(limit=None)} == {
        ("explore", "offline", "pending")}
    assert f"explore [{'#' * 30}] 1/1 units  4 verified, 0 rejected" in err


def test_generate_text_summary_and_runs_listing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = sample_workspace(home)
    [ada] = document_ids(workspace, "Ada Merrow")
    assert main(["generate", "--engine", "offline", "--kinds", "atomic", "--documents", ada, "--limit", "1"]) == 0
    out, _ = capsys.readouterr()
    [run] = workspace.store.list_runs()
    assert out.startswith(f"run {run.id} completed: ")
    assert main(["runs"]) == 0
    listing, _ = capsys.readouterr()
    assert listing.startswith(f"{run.id}  completed ") and "offline atomic" in listing
    assert main(["runs", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["run_id"] == run.id and listed["status"] == "completed"


def test_misuse_and_bad_input_exit_1_with_a_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample_workspace(home)
    assert main(["generate", "--resume", "abc", "--kinds", "atomic"]) == 1
    assert "--resume continues a run as it was configured; drop kinds" in capsys.readouterr().err
    assert main(["generate", "--resume", "nope"]) == 1
    assert "No generation run with id nope" in capsys.readouterr().err
    assert main(["generate", "--documents", "nope", "--engine", "offline"]) == 1
    assert "Unknown document ids: nope" in capsys.readouterr().err
    assert main(["generate", "--kinds", "atomic,sideways", "--engine", "offline"]) == 1
    assert "Unknown task kinds: sideways" in capsys.readouterr().err
    assert main(["generate", "--engine", "bogus"]) == 1


def test_resuming_a_completed_run_changes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = sample_workspace(home)
    [ada] = document_ids(workspace, "Ada Merrow")
    main(["generate", "--engine", "offline", "--kinds", "atomic", "--documents", ada, "--json"])
    first = json.loads(capsys.readouterr().out)
    tasks = workspace.store.count_tasks()
    assert main(["generate", "--resume", first["run_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert workspace.store.count_tasks() == tasks


def run_cli(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "TASKCRAFT_"))}
    env["TASKCRAFT_HOME"] = str(home)
    return subprocess.Popen([sys.executable, "-m", "taskcraft_core", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_process_killed_mid_run_resumes_to_the_same_tasks_as_an_uninterrupted_run(tmp_path: Path) -> None:
    workspace = sample_workspace(tmp_path / "killed")
    titles = ("Ada Merrow", "The Halvard Observatory", "RV Storm Petrel")
    documents = document_ids(workspace, *titles)
    process = run_cli(tmp_path / "killed", "generate", "--engine", "offline", "--kinds", "atomic",
                      "--concurrency", "1", "--json", "--documents", *documents)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = workspace.store.list_runs()
        if runs and len(runs[0].done_units) >= 2:
            break
        time.sleep(0.02)
    process.kill()
    process.wait()
    [killed] = workspace.store.list_runs()
    assert killed.status == "running" and 2 <= len(killed.done_units) < 6, "the run ended before the kill"
    assert [run.id for run in interrupted_runs(workspace)] == [killed.id]

    resume = run_cli(tmp_path / "killed", "generate", "--resume", killed.id, "--json")
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    resumed = json.loads(out)

    reference = sample_workspace(tmp_path / "reference")
    request = RunRequest(kinds=["atomic"], engine="offline", concurrency=1,
                         document_ids=document_ids(reference, *titles))
    expected = execute_run(reference, create_run(reference, request).id)

    def tasks(space: Workspace) -> dict[str, str]:
        return {task.id: task.status for task in space.store.list_tasks(limit=None)}

    assert tasks(workspace) == tasks(reference)
    assert len(tasks(workspace)) == workspace.store.count_tasks() == resumed["candidates"]
    assert resumed["by_kind"] == run_summary(expected).model_dump()["by_kind"]
    final = workspace.store.get_run(killed.id)
    assert final is not None and final.status == "completed" and len(final.done_units) == 6
