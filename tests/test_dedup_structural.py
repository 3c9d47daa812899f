"""Structural duplicates: same answer, same evidence span, same tool sequence, any wording or kind."""

from __future__ import annotations

import json

import pytest

from taskcraft_core.cli import main
from taskcraft_core.curate.dedup import find_near_duplicates
from taskcraft_core.schema import Task, TrajectoryStep
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task


def grounded(task_id: str, question: str, answer: str, tools: list[str], span: tuple[int, int] = (120, 124),
             **changes: object) -> Task:
    task = make_task(task_id, question, answer, document_id="doc1", chunk_id="doc1-0", span_start=span[0],
                     span_end=span[1], **changes)
    steps = [TrajectoryStep(position=0, type="human", content=question)]
    for tool in tools:
        steps += [TrajectoryStep(position=len(steps), type="ai", tool=tool, args={"query": "x"}),
                  TrajectoryStep(position=len(steps) + 1, type="tool", tool=tool, observation="...")]
    steps.append(TrajectoryStep(position=len(steps), type="ai", content=answer))
    return task.model_copy(update={"trajectory": steps})


TOOLS = ["search_corpus", "read_document"]


@pytest.fixture
def stored(workspace: Workspace) -> Workspace:
    workspace.store.add_tasks([
        grounded("atomic", "In which year did the Meridian Observatory open its east dome?", "1887", TOOLS),
        grounded("depth", "The observatory founded by the harbour guild opened its east dome in what year?", "1887",
                 TOOLS, kind="depth", hops=2),
        grounded("other_tools", "When did the Harbour Guild Hall open its east wing?", "1887",
                 ["search_corpus"]),
        grounded("other_span", "What year is carved above the Lantern Inn's door?", "1887", TOOLS,
                 span=(300, 304)),
        grounded("no_tools", "Which year saw Selby Quay finished?", "1887", []),
    ])
    return workspace


def test_same_answer_span_and_tools_are_structural_duplicates_whatever_the_wording(stored: Workspace) -> None:
    clusters = find_near_duplicates(stored, 0.99)
    assert [c.task_ids for c in clusters] == [["atomic", "depth"]]
    pair = clusters[0].pairs[0]
    assert (pair.a, pair.b, pair.kind, pair.structural) == ("atomic", "depth", "structural", True)
    assert pair.cosine < 0.99  # the wording alone would not have joined them


def test_a_dismissed_structural_pair_stays_dismissed(stored: Workspace) -> None:
    stored.store.mark_not_duplicates("atomic", "depth", "ann")
    assert find_near_duplicates(stored, 0.99) == []


def test_dedup_json_labels_structural_pairs(stored: Workspace, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(stored.settings.home))
    assert main(["dedup", "--threshold", "0.99", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clusters"] == [["atomic", "depth"]]
    assert [(p["a"], p["b"], p["kind"], p["structural"]) for p in summary["labelled_pairs"]] == [
        ("atomic", "depth", "structural", True)]
