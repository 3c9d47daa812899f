"""Export: the record contract, every format read back, manifests, dropping duplicates."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from taskcraft_core.curate.export import export_tasks, export_to_bytes
from taskcraft_core.curate.formats import EXPORT_FORMATS, JsonLinesExporter, register_exporter
from taskcraft_core.curate.records import task_record
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import Chunk, Document, TrajectoryStep
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task, question_tasks

ALL = TaskFilter()


def add_document(workspace: Workspace) -> None:
    text = "The Kelvingrove Concert Hall was designed by Alasdair Munro and opened in 1931."
    workspace.store.add_document(
        Document(id="d1", source="hall.txt", content_hash="h1", title="Glasgow Halls", doc_type="text", text=text),
        [Chunk(id="d1:0", document_id="d1", position=0, text=text, start=0, end=len(text))],
    )


def test_the_record_is_the_contract_with_the_edited_text_and_the_decision_in_force(workspace: Workspace) -> None:
    add_document(workspace)
    task = make_task("t1", "Who designed the hall?", "Alasdair Munro", document_id="d1", chunk_id="d1:0",
                     span_start=44, span_end=58, parent_ids=["p0"], hops=2, difficulty=3, kind="depth")
    workspace.store.add_tasks([task])
    store = workspace.store
    assert task_record(store.get_task("t1"), store)["review"] is None
    first = store.record_review("t1", "ann", "accept")
    edit = store.record_review("t1", "ann", "edit", edits={"question": "Who was the hall's architect?"},
                               expected_latest=first.id)
    store.record_review("t1", "bob", "undo", expected_latest=edit.id)
    store.record_review("t1", "bob", "edit", edits={"golden_answer": "A. Munro"}, override=True)
    record = task_record(store.get_task("t1"), store)
    assert list(record) == ["id", "kind", "question", "golden_answer", "content_identifier", "relation", "guideline",
                            "hops", "difficulty", "engine", "model", "status", "source", "parents", "trajectory",
                            "verification", "review", "reviews", "checks"]
    review = record.pop("review")
    assert (review["reviewer"], review["decision"], review["edits"], review["reason"], review["override"]) == (
        "bob", "edit", {"golden_answer": "A. Munro"}, "", True)
    assert review["time"].startswith("20")
    history = record.pop("reviews")  # every decision, in order, undo included
    assert [(r["reviewer"], r["decision"], r["override"], r["adjudication"]) for r in history] == [
        ("ann", "accept", False, False), ("ann", "edit", False, False), ("bob", "undo", False, False),
        ("bob", "edit", True, False)]
    assert history[-1] == review
    assert record == {
        "id": "t1",
        "kind": "depth",
        "question": "Who designed the hall?",
        "golden_answer": "A. Munro",
        "content_identifier": "Glasgow Hall",
        "relation": "architect of",
        "guideline": None,
        "hops": 2,
        "difficulty": 3,
        "engine": "offline",
        "model": "offline-extractive",
        "status": "accepted",
        "source": {"document_id": "d1", "title": "Glasgow Halls", "chunk_id": "d1:0", "start": 44, "end": 58},
        "parents": ["p0"],
        "trajectory": [
            {"type": "human", "content": "Who designed the hall?", "tool": None, "args": None, "observation": None},
            {
                "type": "ai",
                "content": "I will search the corpus.",
                "tool": "search_corpus",
                "args": {"query": "Who designed the hall?", "k": 3},
                "observation": None,
            },
            {
                "type": "tool",
                "content": "",
                "tool": "search_corpus",
                "args": {"query": "Who designed the hall?", "k": 3},
                "observation": "... the answer is Alasdair Munro ...",
            },
            {"type": "ai", "content": "The answer is Alasdair Munro.", "tool": None, "args": None, "observation": None},
        ],
        "verification": {
            "model_alone_answer": "I do not know",
            "model_alone_score": 0,
            "agent_answer": "Alasdair Munro",
            "agent_score": 2,
        },
        # stored without checks, so checked at export: a 2-hop task solved with one search
        "checks": {"hops_not_used": "1 tool call(s) for a 2-hop task"},
    }


def test_jsonl_export_holds_the_filtered_tasks_and_a_manifest_with_checksums(workspace: Workspace,
                                                                             tmp_path: Path) -> None:
    workspace.store.add_tasks(question_tasks())
    for task_id in ("t2", "t7"):
        workspace.store.record_review(task_id, "ann", "accept", override=True)
    out = tmp_path / "out" / "tasks.jsonl"
    manifest = export_tasks(workspace, "jsonl", TaskFilter(statuses=["accepted"]), out)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["t2", "t7"] and manifest.count == 2
    on_disk = json.loads((out.parent / "tasks.jsonl.manifest.json").read_text())
    assert on_disk["format"] == "jsonl" and on_disk["filters"]["statuses"] == ["accepted"]
    assert on_disk["files"] == [{"path": "tasks.jsonl", "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
                                 "bytes": out.stat().st_size}]
    assert on_disk["schema_version"] == 1


def test_exports_sharing_a_folder_each_keep_their_own_manifest(workspace: Workspace, tmp_path: Path) -> None:
    workspace.store.add_tasks(question_tasks())
    workspace.store.record_review("t2", "ann", "accept")
    export_tasks(workspace, "jsonl", TaskFilter(statuses=["accepted"]), tmp_path / "accepted.jsonl")
    export_tasks(workspace, "csv", ALL, tmp_path / "all.csv")
    export_tasks(workspace, "hf_dataset", ALL, tmp_path / "all_hf")
    manifests = {path.name: json.loads(path.read_text()) for path in tmp_path.glob("*.manifest.json")}
    assert {name: (m["format"], m["count"]) for name, m in manifests.items()} == {
        "accepted.jsonl.manifest.json": ("jsonl", 1), "all.csv.manifest.json": ("csv", 10),
        "all_hf.manifest.json": ("hf_dataset", 10)}
    assert [f["path"] for f in manifests["all.csv.manifest.json"]["files"]] == ["all.csv"]
    assert all(f["path"].startswith("all_hf/") for f in manifests["all_hf.manifest.json"]["files"])
    assert not (tmp_path / "manifest.json").exists()


def width_and_depth(workspace: Workspace) -> None:
    width = make_task("w1", "Who designed the hall and how deep is the lake?", ["Alasdair Munro", "312 m"],
                      kind="width")
    depth = make_task("d1", "Who designed the hall in the city on the Clyde?", "Alasdair Munro", kind="depth",
                      trajectory=[
                          TrajectoryStep(position=0, type="human", content="Which city lies on the Clyde?", hop=0),
                          TrajectoryStep(position=1, type="ai", content="Two searches.", tool="search_corpus",
                                         args={"query": "Clyde"}, hop=0),
                          TrajectoryStep(position=2, type="ai", tool="read_document", args={"document_id": "d1"},
                                         hop=0),
                          TrajectoryStep(position=3, type="tool", tool="search_corpus", args={"query": "Clyde"},
                                         observation="Glasgow lies on the Clyde.", hop=0),
                          TrajectoryStep(position=4, type="tool", tool="read_document", args={"document_id": "d1"},
                                         observation="The hall ...", hop=0),
                          TrajectoryStep(position=5, type="ai", content="Glasgow.", hop=0),
                      ])
    workspace.store.add_tasks([width, depth])


def test_openai_chat_messages_pair_every_tool_call_with_its_result(workspace: Workspace, tmp_path: Path) -> None:
    width_and_depth(workspace)
    out = tmp_path / "chat.jsonl"
    export_tasks(workspace, "openai_chat", ALL, out)
    rows = {json.loads(line)["messages"][1]["content"]: json.loads(line) for line in out.read_text().splitlines()}
    depth = rows["Who designed the hall in the city on the Clyde?"]
    messages = depth["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "assistant", "tool", "tool", "assistant"]
    assert messages[2]["content"] == "Sub-question: Which city lies on the Clyde?"
    calls = messages[3]["tool_calls"]
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        ("call_1", "search_corpus", {"query": "Clyde"}), ("call_2", "read_document", {"document_id": "d1"})]
    assert [(m["tool_call_id"], m["content"]) for m in messages[4:6]] == [
        ("call_1", "Glasgow lies on the Clyde."), ("call_2", "The hall ...")]
    assert messages[-1] == {"role": "assistant", "content": "Alasdair Munro"}
    assert {t["function"]["name"] for t in depth["tools"]} == {"search_corpus", "read_document"}
    width = rows["Who designed the hall and how deep is the lake?"]["messages"]
    assert width[-1]["content"] == "Alasdair Munro; 312 m"
    for row in rows.values():
        ids = [c["id"] for m in row["messages"] for c in m.get("tool_calls", [])]
        answered = [m["tool_call_id"] for m in row["messages"] if m["role"] == "tool"]
        assert sorted(ids) == sorted(answered)


def test_sharegpt_turns(workspace: Workspace, tmp_path: Path) -> None:
    workspace.store.add_tasks([make_task("t1", "Who designed the hall?", "Alasdair Munro")])
    out = tmp_path / "sharegpt.jsonl"
    export_tasks(workspace, "sharegpt", ALL, out)
    row = json.loads(out.read_text())
    assert [t["from"] for t in row["conversations"]] == ["human", "gpt", "function_call", "observation", "gpt"]
    assert json.loads(row["conversations"][2]["value"]) == {
        "name": "search_corpus", "arguments": {"query": "Who designed the hall?", "k": 3}}
    assert row["conversations"][-1]["value"] == "Alasdair Munro"


def test_parquet_csv_and_hf_dataset_read_back(workspace: Workspace, tmp_path: Path) -> None:
    workspace.store.add_tasks(question_tasks()[:3])
    width_and_depth(workspace)
    export_tasks(workspace, "parquet", ALL, tmp_path / "p" / "tasks.parquet")
    table = pq.read_table(tmp_path / "p" / "tasks.parquet").to_pylist()
    by_id = {row["id"]: row for row in table}
    assert len(table) == 5 and by_id["w1"]["golden_answer"] == ["Alasdair Munro", "312 m"]
    assert by_id["t1"]["golden_answer"] == ["Alasdair Munro"]
    assert json.loads(by_id["t1"]["trajectory"][1]["args"]) == {"query": by_id["t1"]["question"][:40], "k": 3}
    assert by_id["t1"]["verification"]["agent_score"] == 2 and by_id["t1"]["review"] is None

    export_tasks(workspace, "csv", ALL, tmp_path / "c" / "tasks.csv")
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "c" / "tasks.csv").open(encoding="utf-8"))}
    assert json.loads(rows["w1"]["golden_answer"]) == ["Alasdair Munro", "312 m"]
    assert rows["t1"]["golden_answer"] == "Alasdair Munro"
    assert len(json.loads(rows["d1"]["trajectory"])) == 6 and rows["t1"]["review"] == ""

    manifest = export_tasks(workspace, "hf_dataset", ALL, tmp_path / "h" / "tasks_hf")
    dataset = datasets.load_from_disk(str(tmp_path / "h" / "tasks_hf"))
    assert dataset.num_rows == 5 and sorted(dataset["id"]) == sorted(by_id)
    depth_row = dataset[list(dataset["id"]).index("d1")]
    assert depth_row["trajectory"][3]["observation"] == "Glasgow lies on the Clyde."
    for entry in manifest.files:
        file = tmp_path / "h" / entry["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == entry["sha256"]
        assert file.stat().st_size == entry["bytes"]
    assert any(entry["path"].endswith(".arrow") for entry in manifest.files)


def test_downloads_are_the_file_or_a_zip_of_the_folder(workspace: Workspace) -> None:
    workspace.store.add_tasks(question_tasks()[:2])
    data, name, manifest = export_to_bytes(workspace, "jsonl", ALL)
    assert name == "taskcraft_jsonl.jsonl" and len(data.splitlines()) == 2 and manifest.count == 2
    data, name, _ = export_to_bytes(workspace, "hf_dataset", ALL)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert name == "taskcraft_hf_dataset.zip" and "taskcraft_hf_dataset.manifest.json" in names
    assert "taskcraft_hf_dataset/dataset_info.json" in names


def test_drop_duplicates_leaves_out_marked_tasks_and_all_but_one_per_cluster(workspace: Workspace,
                                                                             tmp_path: Path) -> None:
    workspace.store.add_tasks(question_tasks())
    workspace.store.record_review("t2", "ann", "accept", override=True)
    workspace.store.record_review("t8", "ann", "duplicate", reason="duplicate of t7", override=True)
    workspace = Workspace(workspace.settings.with_changes(duplicate_threshold=0.85), workspace.store, workspace.index)
    manifest = export_tasks(workspace, "jsonl", ALL, tmp_path / "all.jsonl", drop_duplicates=True)
    ids = [json.loads(line)["id"] for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert ids == ["t2", "t4", "t5", "t7", "t9", "t10"]  # t2 is the accepted one of t1-t3
    assert manifest.dropped_duplicates == 4


def test_unknown_format_and_a_users_own_format(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(TaskCraftError, match="Unknown export format"):
        export_tasks(workspace, "xml", ALL, tmp_path / "x.xml")
    workspace.store.add_tasks(question_tasks()[:2])
    register_exporter(JsonLinesExporter("questions", "Only the questions.", lambda r: {"q": r["question"]}))
    try:
        export_tasks(workspace, "questions", ALL, tmp_path / "q.jsonl")
        assert [json.loads(x)["q"][:5] for x in (tmp_path / "q.jsonl").read_text().splitlines()] == ["Which"] * 2
    finally:
        EXPORT_FORMATS.pop("questions")
