"""CLI: export, import, review and dedup — exit codes and JSON outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskcraft_core.cli import main
from taskcraft_core.workspace import Workspace
from tests.curation_factory import question_tasks

REPO = Path(__file__).parent.parent


@pytest.fixture
def home(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("TASKCRAFT_HOME", str(workspace.settings.home))
    workspace.store.add_tasks(question_tasks())
    return workspace


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_review_then_export_accepted_as_json(
    home: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["review", "t7", "--accept", "--reviewer", "ann", "--json"], capsys)
    printed = json.loads(out)
    assert code == 0 and {key: printed[key] for key in ("task_id", "decision", "status", "override")} == {
        "task_id": "t7", "decision": "accept", "status": "accepted", "override": False}
    assert [(r["reviewer"], r["decision"]) for r in printed["reviews"]] == [("ann", "accept")]
    assert printed["review"] == printed["reviews"][0]
    code, out, _ = run(["review", "t8", "--reject", "--reviewer", "ann", "--reason", "ambiguous"], capsys)
    assert code == 0 and out.strip() == "task t8: rejected by ann"
    code, out, _ = run(["export", "--format", "jsonl", "--out", str(tmp_path / "x" / "a.jsonl"), "--json"], capsys)
    manifest = json.loads(out)
    assert code == 0 and (manifest["count"], manifest["format"]) == (1, "jsonl")
    assert json.loads((tmp_path / "x" / "a.jsonl").read_text())["id"] == "t7"
    code, out, _ = run(["export", "--status", "all", "--format", "csv", "--out", str(tmp_path / "all.csv")], capsys)
    assert code == 0 and out.strip() == f"exported 10 tasks as csv to {tmp_path / 'all.csv'}"


def test_review_misuse_and_unknown_tasks_exit_1(home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["review", "t1", "--accept", "--reject", "--reviewer", "ann"], capsys)[0] == 1
    assert run(["review", "t1", "--accept"], capsys)[0] == 1
    code, _, err = run(["review", "nope", "--accept", "--reviewer", "ann"], capsys)
    assert code == 1 and "No task with id nope" in err
    assert run(["export", "--format", "xml", "--out", "x"], capsys)[0] == 1


def test_import_exit_codes_and_json(home: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"question": "How many?", "golden_answer": "4"}) + "\n")
    code, out, _ = run(["import", str(good), "--format", "taskcraft", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"added": 1, "skipped": 0, "errors": []}
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({"question": "How many more?", "golden_answer": "5"}) + "\nnot json\n")
    code, out, err = run(["import", str(mixed), "--format", "taskcraft"], capsys)
    assert code == 2 and out.strip() == "1 tasks added, 0 already present, 1 bad lines" and "line 2" in err
    code, _, err = run(["import", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 1 and "No file" in err


def test_dedup_prints_clusters(home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["dedup", "--threshold", "0.85", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"tasks": 10, "pairs": 4, "clusters": [["t1", "t2", "t3"], ["t5", "t6"]]}
    code, out, _ = run(["dedup", "--threshold", "0.85"], capsys)
    assert code == 0 and out.splitlines()[0] == "2 clusters, 4 pairs"
    assert "t1 ~ t2  exact  cosine 1.000" in out
    code, _, err = run(["dedup", "--threshold", "2"], capsys)
    assert code == 1 and "out of range" in err


def test_dedup_piped_into_a_reader_that_stops_early_ends_quietly(home: Workspace) -> None:
    # `dedup | head -0`: the reader is gone before the first line is written.
    env = {**os.environ, "TASKCRAFT_HOME": str(home.settings.home)}
    process = subprocess.Popen([sys.executable, "-m", "taskcraft_core", "dedup", "--threshold", "0.85"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and errors == ""


def test_review_names_the_state_it_decides_on_conflicts_exit_2_and_override_is_recorded(
        home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["review", "t1", "--accept", "--reviewer", "ann"], capsys)[0] == 0
    [ann] = home.store.reviews_for("t1")
    code, out, err = run(["review", "t1", "--reject", "--reviewer", "bob", "--json"], capsys)  # made on "none"
    assert code == 2 and json.loads(out)["current_review_id"] == ann.id
    assert err.startswith("conflict: Task t1 changed since the state this decision was made on (no decision): "
                          f"ann recorded accept (review {ann.id}).")
    assert f"--expect {ann.id}" in err and home.store.get_task("t1").status == "accepted"
    code, out, _ = run(["review", "t1", "--reject", "--reviewer", "bob", "--expect", str(ann.id)], capsys)
    assert code == 0 and out.strip() == "task t1: rejected by bob"
    code, out, _ = run(["review", "t1", "--accept", "--reviewer", "cleo", "--override", "--json"], capsys)
    assert code == 0 and json.loads(out)["override"] is True
    code, out, _ = run(["review", "t1"], capsys)  # no decision: the history, newest review id first line
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"task t1: accepted; latest review {ann.id + 2}"
    assert [line.split()[3:] for line in lines[1:]] == [["ann:", "accept"], ["bob:", "reject"],
                                                        ["cleo:", "accept", "[override]"]]
    assert run(["review", "t1", "--accept", "--reviewer", "dan", "--expect", "soon"], capsys)[0] == 1


def test_review_adjudicate_needs_an_adjudicator(home: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["review", "t2", "--accept", "--reviewer", "ann", "--adjudicate"], capsys)
    assert code == 1 and "ann may not adjudicate" in err and home.store.reviews_for("t2") == []
