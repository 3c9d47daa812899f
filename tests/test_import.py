"""Import: our JSONL round trip, the reference TaskCraft records, bad lines with line numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskcraft_core.curate.export import export_tasks
from taskcraft_core.curate.importers import import_tasks
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import Chunk, Document, content_id
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task, question_tasks

ALL = TaskFilter()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_import_export_gives_the_same_records_reviews_included(workspace: Workspace, tmp_path: Path) -> None:
    text = "The Kelvingrove Concert Hall was designed by Alasdair Munro."
    workspace.store.add_document(
        Document(id="d1", source="hall.txt", content_hash="h1", title="Glasgow Halls", doc_type="text", text=text),
        [Chunk(id="d1:0", document_id="d1", position=0, text=text, start=0, end=len(text))])
    tasks = question_tasks()
    tasks[0] = tasks[0].model_copy(update={"document_id": "d1", "chunk_id": "d1:0", "span_start": 45, "span_end": 59})
    tasks.append(make_task("w1", "Who designed the hall and how deep is the lake?", ["Alasdair Munro", "312 m"],
                           kind="width", parent_ids=["t1", "t7"], status="failed_verification", verification=None))
    workspace.store.add_tasks(tasks)
    workspace.store.record_review("t2", "ann", "accept", override=True)
    workspace.store.record_review("t3", "ann", "edit", edits={"question": "Edited?"}, override=True)
    workspace.store.record_review("t4", "bob", "reject", reason="Answer is wrong: 1932", override=True)
    workspace.store.record_review("t4", "cleo", "edit", edits={"golden_answer": "M. Reid"}, override=True)
    undone = workspace.store.record_review("t5", "bob", "accept", override=True)
    workspace.store.undo_review(undone.id, "bob")
    first = tmp_path / "first" / "tasks.jsonl"
    export_tasks(workspace, "jsonl", ALL, first)

    fresh = Workspace.open(Settings(home=tmp_path / "fresh"))
    report = import_tasks(fresh, first, "jsonl")
    assert (report.added, report.skipped, report.errors) == (11, 0, [])
    second = tmp_path / "second" / "tasks.jsonl"
    export_tasks(fresh, "jsonl", ALL, second)

    assert records(second) == records(first)
    by_id = {r["id"]: r for r in records(second)}
    assert (by_id["t2"]["status"], by_id["t2"]["review"]["reviewer"], by_id["t2"]["review"]["decision"]) == (
        "accepted", "ann", "accept")
    assert (by_id["t3"]["question"], by_id["t3"]["review"]["edits"]) == ("Edited?", {"question": "Edited?"})
    assert (by_id["t4"]["status"], by_id["t4"]["golden_answer"], by_id["t4"]["review"]["reviewer"]) == (
        "rejected", "M. Reid", "cleo")
    assert by_id["t5"]["status"] == "pending" and by_id["t5"]["review"] is None
    assert fresh.store.count_tasks(TaskFilter(reviewers=["ann"])) == 2
    [accept] = fresh.store.reviews_for("t2")
    fresh.store.undo_review(accept.id, "ann")  # an accepted import goes back to the queue when undone
    assert fresh.store.get_task("t2").status == "pending"
    assert import_tasks(fresh, first, "jsonl").model_dump() == {"added": 0, "skipped": 11, "errors": []}
    assert fresh.store.count_tasks() == 11


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_imports(workspace: Workspace, tmp_path: Path) -> None:
    good = [json.dumps({"id": f"g{i}", "kind": "atomic", "question": f"Question {i}?", "golden_answer": str(i)})
            for i in range(3)]
    lines = [good[0], "{not json", good[1], "", "[1, 2]",
             json.dumps({"id": "x1", "kind": "atomic", "golden_answer": "1"}),
             json.dumps({"id": "x2", "kind": "riddle", "question": "Q?", "golden_answer": "1"}), good[2]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_tasks(workspace, path, "jsonl")
    assert report.added == 3 and report.skipped == 0
    assert [e.split(":")[0] for e in report.errors] == ["line 2", "line 5", "line 6", "line 7"]
    assert "not valid JSON" in report.errors[0] and "expected a JSON object" in report.errors[1]
    assert "missing field 'question'" in report.errors[2] and "invalid field kind" in report.errors[3]
    imported = workspace.store.get_task("g1")
    assert imported is not None and (imported.engine, imported.status) == ("import", "pending")


def test_ids_that_are_not_plain_identifiers_are_replaced_and_kept(workspace: Workspace, tmp_path: Path) -> None:
    odd_id = "**bold**<img src=x onerror=alert(1)>"
    rows = [{"id": odd_id, "kind": "atomic", "question": "Q1?", "golden_answer": "1"},
            {"id": "child_1", "kind": "depth", "question": "Q2?", "golden_answer": "2", "parents": [odd_id]},
            {"id": "x" * 33, "kind": "atomic", "question": "Q3?", "golden_answer": "3"},
            {"id": "ok:id-1.2_z", "kind": "atomic", "question": "Q4?", "golden_answer": "4"}]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    assert import_tasks(workspace, path, "jsonl").added == 4
    derived = content_id("imported-id", odd_id)
    parent = workspace.store.get_task(derived)
    assert parent is not None and parent.difficulty_inputs["imported"] == {"id": odd_id}
    assert workspace.store.get_task("child_1").parent_ids == [derived]
    assert workspace.store.get_task(content_id("imported-id", "x" * 33)).question == "Q3?"
    kept = workspace.store.get_task("ok:id-1.2_z")
    assert kept is not None and kept.difficulty_inputs == {}
    assert import_tasks(workspace, path, "jsonl").skipped == 4  # the derived ids are stable


def test_a_review_that_is_not_a_decision_is_a_bad_line(workspace: Workspace, tmp_path: Path) -> None:
    base = {"kind": "atomic", "question": "Q?", "golden_answer": "1"}
    rows = [base | {"id": "a", "review": {"reviewer": "ann", "decision": "undo"}},
            base | {"id": "b", "review": {"reviewer": " ", "decision": "accept"}},
            base | {"id": "c", "review": {"reviewer": "ann", "decision": "accept", "time": "yesterday"}},
            base | {"id": "d", "review": {"reviewer": "ann", "decision": "reject", "reason": "vague"}}]
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    report = import_tasks(workspace, path, "jsonl")
    assert report.added == 1 and [e.split(":")[0] for e in report.errors] == ["line 1", "line 2", "line 3"]
    assert "decision among accept, reject, edit, duplicate" in report.errors[0]
    assert "no reviewer" in report.errors[1] and "invalid field created_at" in report.errors[2]
    assert workspace.store.get_task("d").status == "rejected"


def test_the_import_benchmark_leaves_no_folders_behind(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bench.bench_import", "--n", "30"], env=env, capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert "import jsonl, database only: 30 added, 0 errors" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_missing_file_and_unknown_format_are_errors(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(TaskCraftError, match="No file"):
        import_tasks(workspace, tmp_path / "nope.jsonl", "jsonl")
    (tmp_path / "a.jsonl").write_text("{}\n")
    with pytest.raises(TaskCraftError, match="Unknown import format"):
        import_tasks(workspace, tmp_path / "a.jsonl", "yaml")  # type: ignore[arg-type]


ATOMIC = {
    "question": "According to the paper 'TaskCraft: Automated Generation of Agentic Tasks', how many tasks are in "
                "the synthetic dataset?",
    "golden_answer": "36,000", "content_identifier": "TaskCraft: Automated Generation of Agentic Tasks",
    "model_id": "gpt-4.1", "agent_result": ["about 36,000 tasks"], "agent_score": 2.0, "agent_step_number": 2,
    "llm_result": "I am not sure.", "llm_score": 0.0,
    "agent_trajectory": [
        {"name": "facts", "value": "Need the dataset size.", "think": "Look for the paper."},
        {"name": "plan", "value": "1. search 2. read", "think": ""},
        {"name": "action", "value": '{"name": "web_search", "arguments": {"query": "TaskCraft dataset size"}}',
         "obs": "TaskCraft ... 36,000 synthetic tasks ...", "think": "Search first."},
        {"name": "action", "value": "Final answer: 36,000", "obs": None, "think": "Done."},
    ],
}
DEPTH = {
    "question": "How many tasks are in the dataset of the paper proposed by OPPO's Personal AI Lab in June 2025?",
    "golden_answer": "36,000",
    "trajectory": [
        {"sub_query": "Which paper did OPPO's Personal AI Lab propose in June 2025?", "sub_answer": "TaskCraft",
         "sub_trajectory": [{"name": "action", "value": {"name": "web_search", "arguments": {"query": "OPPO"}},
                             "obs": "TaskCraft: Automated Generation of Agentic Tasks", "think": ""}]},
        {"sub_query": ATOMIC["question"], "sub_answer": "36,000", "sub_trajectory": None},
    ],
}
DATASET_ROW = {"query": "In the CVPR paper about surrogate modeling of Cellular-Potts models, how many ...?",
               "answer": "590", "valid_hop": 2, "domain": "biology_paper_pdftool", "tool": ["pdf_tool", "web_tool"]}
WIDTH = {"question": "What extension methods does TaskCraft use, and how large is its dataset?",
         "content_identifier": "TaskCraft", "golden_answers": ["depth-based and width-based extensions", "36,000"],
         "index": [0, 1], "original_questions": ["What methods ...?", "How many tasks ...?"]}


def test_reference_taskcraft_records_map_onto_tasks(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "taskcraft.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (ATOMIC, DEPTH, DATASET_ROW, WIDTH, {"query": "no answer?"})),
                    encoding="utf-8")
    report = import_tasks(workspace, path, "taskcraft")
    assert report.added == 4 and report.errors == ["line 5: no answer (expected 'golden_answer', 'answer' or "
                                                   "'golden_answers')"]
    tasks = {t.question: t for t in workspace.store.list_tasks(limit=None, with_trajectory=True)}
    atomic = tasks[ATOMIC["question"]]
    assert (atomic.kind, atomic.golden_answer, atomic.model, atomic.engine, atomic.status, atomic.hops) == (
        "atomic", "36,000", "gpt-4.1", "import", "pending", 1)
    assert atomic.content_identifier == "TaskCraft: Automated Generation of Agentic Tasks"
    assert atomic.verification is not None
    assert (atomic.verification.agent_answer, atomic.verification.agent_score, atomic.verification.model_alone_score,
            atomic.verification.agent_steps) == ("about 36,000 tasks", 2, 0, 2)
    assert [(s.type, s.tool) for s in atomic.trajectory] == [("ai", None), ("ai", None), ("tool", "web_search"),
                                                              ("ai", None)]
    assert atomic.trajectory[0].content == "[facts] Look for the paper.\nNeed the dataset size."
    assert atomic.trajectory[2].args == {"query": "TaskCraft dataset size"}
    assert atomic.trajectory[2].observation == "TaskCraft ... 36,000 synthetic tasks ..."

    depth = tasks[DEPTH["question"]]
    assert (depth.kind, depth.hops, depth.difficulty) == ("depth", 2, 2)
    assert [(s.type, s.hop, s.tool) for s in depth.trajectory] == [("human", 0, None), ("tool", 0, "web_search"),
                                                                   ("human", 1, None)]
    row = tasks[DATASET_ROW["query"]]
    assert (row.golden_answer, row.hops, row.kind) == ("590", 2, "depth")
    assert row.difficulty_inputs["imported"] == {"domain": "biology_paper_pdftool", "tool": ["pdf_tool", "web_tool"]}
    width = tasks[WIDTH["question"]]
    assert (width.kind, width.width, width.golden_answer) == ("width", 2, WIDTH["golden_answers"])
    assert width.difficulty_inputs["imported"]["original_questions"] == WIDTH["original_questions"]
    assert import_tasks(workspace, path, "taskcraft").skipped == 4
