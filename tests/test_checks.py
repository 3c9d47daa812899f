"""The automatic pre-review checks on trajectories made by the real agent loop with scripted models:
each check flags what it names and nothing clean; results are stored at generation and import, re-run
by `check`, carried by every JSONL record and usable to leave flagged tasks out of an export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskcraft_core.agent.loop import run_agent
from taskcraft_core.agent.tools import make_tools
from taskcraft_core.cli import main
from taskcraft_core.generate.atomic import generate_atomic
from taskcraft_core.generate.checks import answer_forms, recheck_tasks, run_checks
from taskcraft_core.generate.context import GenerationContext
from taskcraft_core.generate.llm.engine import LLMEngine
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.models.chat import Usage
from taskcraft_core.schema import Task, Verification
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import LIGHTHOUSE, add_document
from tests.scripted_model import ScriptedChatModel, call, reply, structured

QUESTION = "According to the Brenna Light article, on what date was the lighthouse first lit?"


@pytest.fixture
def workspace(settings: Settings, store: Store, index: VectorIndex) -> Workspace:
    opened = Workspace(settings, store, index)
    add_document(opened, "brenna.md", LIGHTHOUSE)
    return opened


def solved(workspace: Workspace, question: str = QUESTION, *, turns: list[Any], golden: str | list[str] = "1871-03-14",
           hops: int = 1, alone_score: int = 0, task_id: str = "t1") -> Task:
    """A task whose trajectory is what the real agent loop made of scripted model turns."""
    result = run_agent(question, ScriptedChatModel.of(turns), make_tools(workspace, allow_fetch=False),
                       max_steps=5, tool_timeout_s=5)
    return Task(id=task_id, kind="atomic" if hops == 1 else "depth", question=question, golden_answer=golden,
                content_identifier="Brenna Light", hops=hops, engine="openai", model="scripted",
                trajectory=result.steps,
                verification=Verification(model_alone_answer="1880", model_alone_score=alone_score,
                                          agent_answer=result.answer, agent_score=2))


def searched(query: str = "Brenna Light first lit", **args: Any) -> list[Any]:
    return [call("search_corpus", {"query": query, **args}), reply("14 March 1871")]


def test_a_clean_task_is_flagged_by_nothing(workspace: Workspace) -> None:
    assert run_checks(solved(workspace, turns=searched())) == {}


@pytest.mark.parametrize(("question", "golden", "form"), [
    ("When was the lighthouse first lit, 1871-03-14 or later?", "1871-03-14", "1871-03-14"),
    ("Was the Brenna Light first lit on 14 March 1871?", "1871-03-14", "1871-03-14"),
    ("Was it first lit on March 14th, 1871?", "1871-03-14", "1871-03-14"),
    ("Was it first lit on 14/3/1871?", "1871-03-14", "14/3/1871"),
    ("How tall is the forty-metre tower?", "40 m", "forty"),
    ("Is the tower forty m tall?", "40 m", "forty m"),
    ("Is the tower forty metres tall?", "40", "forty"),
    ("Which keeper served until eighteen seventy-one?", "1871", "eighteen seventy-one"),
    ("Who is JONAS vell?", "Jonas Vell", "Jonas Vell"),
    ("Which model is Humpback-65B compared with?", "Humpback65B", "Humpback65B"),
    ("What did JonasVell keep?", "Jonas Vell", "Jonas Vell"),
    ("Who kept the light, and for how many years after 1871 did Jonas Vell keep it?", ["Jonas Vell", "31"],
     "Jonas Vell"),
])
def test_answer_in_question_in_any_form(workspace: Workspace, question: str, golden: str | list[str],
                                        form: str) -> None:
    task = solved(workspace, question, turns=searched(), golden=golden)
    detail = run_checks(task)["answer_in_question"]
    part = golden if isinstance(golden, str) else golden[0]
    assert detail == f"“{part}” is in the question" + (f" (as “{form}”)" if form != part else "")


@pytest.mark.parametrize(("question", "golden"), [
    ("Which one of the keepers served two terms?", "2"),  # small numbers in words are everyday words
    ("How many nautical miles away can the lamp be seen?", "22 nautical miles"),
    ("In what year did the keeper of the light, Jonas, retire?", "1902"),
    ("What is the height of the Vellington tower in metres?", "Vell"),
])
def test_answer_in_question_leaves_clean_questions_alone(workspace: Workspace, question: str, golden: str) -> None:
    task = solved(workspace, question, turns=searched(), golden=golden)
    assert "answer_in_question" not in run_checks(task)


def test_answer_forms_spell_numbers_years_and_dates() -> None:
    assert answer_forms("1063") == ["1063", "one thousand and sixty-three", "ten sixty-three",
                                    "one thousand sixty-three"]
    assert "3/5/1889" in answer_forms("1889-05-03") and "5/3/1889" in answer_forms("1889-05-03")


def test_answer_not_observed_when_no_observation_shows_it(workspace: Workspace) -> None:
    task = solved(workspace, turns=[call("search_corpus", {"query": "Skerry Island ferries"}), reply("1871-03-14")],
                  golden="1871-03-15")
    assert run_checks(task)["answer_not_observed"] == "no tool observation shows “1871-03-15”"
    # The source writes "38 metres"; the canonical "38 m" was still seen.
    tall = solved(workspace, "How tall is the tower?", turns=searched("Brenna Light tower tall"), golden="38 m")
    assert "answer_not_observed" not in run_checks(tall)


def test_solvable_without_tools(workspace: Workspace) -> None:
    no_tools = solved(workspace, turns=[reply("14 March 1871")])
    assert run_checks(no_tools) == {
        "answer_not_observed": "the trajectory has no tool observation, so “1871-03-14” was never seen",
        "solvable_without_tools": "the trajectory has no tool call",
        "hops_not_used": "0 tool call(s) for a 1-hop task",
    }
    known = solved(workspace, turns=searched(), alone_score=1)
    assert run_checks(known) == {"solvable_without_tools": "the model alone scored 1"}


def test_hops_not_used(workspace: Workspace) -> None:
    task = solved(workspace, turns=searched(), hops=3)
    assert run_checks(task) == {"hops_not_used": "1 tool call(s) for a 3-hop task"}
    twice = solved(workspace, turns=[call("search_corpus", {"query": "Brenna Light"}), *searched()], hops=2)
    assert run_checks(twice) == {}


@pytest.mark.parametrize(("turn", "detail"), [
    (call("google", {"q": "Brenna Light"}), "call to 'google', a tool the studio does not have"),
    (call("search_corpus", {"query": "Brenna Light", "k": 99}),
     "search_corpus: k: Input should be less than or equal to 10"),
    (call("read_document", {"page": 1}), "read_document: document_id: Field required"),
])
def test_tool_args_invalid(workspace: Workspace, turn: Any, detail: str) -> None:
    task = solved(workspace, turns=[turn, *searched()])
    assert run_checks(task)["tool_args_invalid"] == detail


def test_generation_stores_checks_and_check_reruns_them(workspace: Workspace, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    document = workspace.store.list_documents()[0]
    chunk = workspace.store.get_chunks(document.id)[0]
    engine = LLMEngine(
        ScriptedChatModel.of([structured({"conclusions": [{
                                  "answer": "14 March 1871", "relation": "the date the Brenna Light was first lit",
                                  "evidence": "It was first lit on 14 March 1871."}]}),
                              structured({"question": QUESTION}), structured({"answer": "1871-03-14"})]),
        ScriptedChatModel.of([reply("1880"), *searched()]),
        ScriptedChatModel.of([structured({"rationale": "another year", "score": 0})]), model="scripted")
    [task] = generate_atomic(document, chunk, GenerationContext(workspace, engine, Usage()))
    assert task.status == "pending" and task.checks == {}
    flagged = solved(workspace, turns=searched(), hops=2, task_id="t2")
    workspace.store.add_tasks([task, flagged.model_copy(update={"checks": None})])
    assert workspace.store.get_task(task.id).checks == {} and workspace.store.get_task("t2").checks is None

    report = recheck_tasks(workspace.store)
    assert report.checked == 2 and report.flagged == {"t2": ["hops_not_used"]}
    assert workspace.store.get_task("t2").checks == {"hops_not_used": "1 tool call(s) for a 2-hop task"}
    assert workspace.store.list_task_ids(TaskFilter(checks=["hops_not_used"])) == ["t2"]
    assert workspace.store.list_task_ids(TaskFilter(checks=["any"])) == ["t2"]
    assert workspace.store.list_task_ids(TaskFilter(exclude_flagged=True)) == [task.id]

    monkeypatch.setenv("TASKCRAFT_HOME", str(workspace.settings.home))
    assert main(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"checked": 2, "flagged": {"t2": ["hops_not_used"]}}
    assert main(["check", "--status", "accepted", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"checked": 0, "flagged": {}}

    out = tmp_path / "clean.jsonl"
    assert main(["export", "--status", "all", "--exclude-flagged", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["checks"]) for r in records] == [(task.id, {})]
    everything = tmp_path / "all.jsonl"
    assert main(["export", "--status", "all", "--out", str(everything)]) == 0
    assert {json.loads(line)["id"]: json.loads(line)["checks"] for line in everything.read_text().splitlines()} == {
        task.id: {}, "t2": {"hops_not_used": "1 tool call(s) for a 2-hop task"}}
