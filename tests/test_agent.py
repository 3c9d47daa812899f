"""The real create_agent loop driven by a scripted model: trajectory capture, latency and tokens per
step, and everything a model can do wrong ending as observations, not exceptions."""

from __future__ import annotations

import time

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from taskcraft_core.agent.loop import run_agent
from taskcraft_core.agent.tools import make_tools
from taskcraft_core.workspace import Workspace
from tests.generation_corpus import LIGHTHOUSE, add_document
from tests.scripted_model import ScriptedChatModel, call, reply


def test_trajectory_records_question_calls_observations_tokens_and_latency(workspace: Workspace) -> None:
    document = add_document(workspace, "brenna.md", LIGHTHOUSE)
    model = ScriptedChatModel.of([
        call("search_corpus", {"query": "Brenna Light first lit", "k": 2}, "c1", tokens=11),
        call("read_document", {"document_id": document.id, "start": 0, "end": 120}, "c2", tokens=13),
        reply("1871-03-14", tokens=17),
    ])
    result = run_agent("When was the Brenna Light first lit?", model, make_tools(workspace, allow_fetch=False),
                       max_steps=4, tool_timeout_s=5)
    assert result.answer == "1871-03-14" and result.finished and result.failure is None
    assert (result.calls, result.tokens, result.tool_steps) == (3, 41, 2)
    assert [(s.position, s.type, s.tool) for s in result.steps] == [
        (0, "human", None), (1, "ai", "search_corpus"), (2, "tool", "search_corpus"),
        (3, "ai", "read_document"), (4, "tool", "read_document"), (5, "ai", None),
    ]
    assert result.steps[0].content == "When was the Brenna Light first lit?"
    assert result.steps[1].args == {"query": "Brenna Light first lit", "k": 2}
    assert result.steps[3].tokens == 13 and result.steps[5].tokens == 17
    assert result.steps[4].args == {"document_id": document.id, "start": 0, "end": 120}
    assert result.steps[4].observation.endswith("\n" + document.text[0:120])
    assert "It was first lit on 14 March 1871." in result.steps[2].observation
    assert all(s.latency_ms > 0 for s in result.steps if s.type in ("ai", "tool"))


def test_invalid_arguments_and_unknown_tools_become_observations(workspace: Workspace) -> None:
    model = ScriptedChatModel.of(
        [
            call("read_document", {"page": "first"}, "c1"),
            call("open_browser", {"url": "x"}, "c2"),
            AIMessage(
                content="",
                invalid_tool_calls=[
                    {
                        "name": "search_corpus",
                        "args": "{query: oops",
                        "id": "c3",
                        "error": "bad json",
                        "type": "invalid_tool_call",
                    }
                ],
            ),
            reply("I could not find it."),
        ]
    )
    result = run_agent("Who kept the light?", model, make_tools(workspace, allow_fetch=False),
                       max_steps=5, tool_timeout_s=5)
    assert result.finished and result.answer == "I could not find it."
    observations = [s for s in result.steps if s.type == "tool"]
    assert [s.tool for s in observations] == ["read_document", "open_browser", "search_corpus"]
    assert "document_id" in observations[0].observation and "Field required" in observations[0].observation
    assert "open_browser is not a valid tool" in observations[1].observation
    assert "are not valid JSON (bad json)" in observations[2].observation
    assert result.steps[5].args == {"raw_arguments": "{query: oops"}
    assert result.tool_steps == 3


def test_step_limit_ends_the_run_with_a_failure_not_an_exception(workspace: Workspace) -> None:
    model = ScriptedChatModel.of([call("search_corpus", {"query": f"try {n}"}, f"c{n}") for n in range(10)])
    result = run_agent("Loop forever?", model, make_tools(workspace, allow_fetch=False), max_steps=3,
                       tool_timeout_s=5)
    assert not result.finished and result.answer == ""
    assert result.failure == "step limit reached: no final answer after 3 tool steps"
    assert [s.args["query"] for s in result.steps if s.type == "tool"] == ["try 0", "try 1", "try 2"]


def test_failing_and_hanging_tools_become_observations() -> None:
    @tool
    def explode(text: str) -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool
    def dawdle(text: str) -> str:
        """Takes too long."""
        time.sleep(2)
        return "late"

    model = ScriptedChatModel.of([call("explode", {"text": "a"}, "c1"), call("dawdle", {"text": "b"}, "c2"),
                                  reply("gave up")])
    result = run_agent("Anything?", model, [explode, dawdle], max_steps=4, tool_timeout_s=0.2)
    observations = [s.observation for s in result.steps if s.type == "tool"]
    assert observations == ["Error: explode failed: RuntimeError: disk on fire",
                            "Error: dawdle did not answer within 0.2 s; try something else."]
    assert result.answer == "gave up"


def test_an_empty_final_answer_is_a_failure(workspace: Workspace) -> None:
    result = run_agent("Say nothing", ScriptedChatModel.of([reply("  ")]), make_tools(workspace, allow_fetch=False),
                       max_steps=2, tool_timeout_s=1)
    assert not result.finished and result.failure == "the agent gave an empty answer"
