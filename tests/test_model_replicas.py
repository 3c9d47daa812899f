"""TASKCRAFT_OPENAI_BASE_URLS: calls spread over replicas of one model, a failing replica skipped, and
every replica given its key by the same rule — through the real ChatOpenAI against stub servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from taskcraft_core.errors import ModelUnavailableError
from taskcraft_core.models.chat import ReplicatedChatOpenAI, invoke_structured, invoke_text, make_chat_model
from taskcraft_core.settings import Settings
from tests.stub_openai import StubOpenAI, answer_with, closed_port_url, error_reply, text_reply

KEY = "sk-fleet-0123456789"


@pytest.fixture
def replicas() -> Iterator[tuple[StubOpenAI, StubOpenAI]]:
    with StubOpenAI(default=lambda _request: text_reply("from a")) as a, \
            StubOpenAI(default=lambda _request: text_reply("from b")) as b:
        yield a, b


def fleet_settings(*urls: str) -> Settings:
    return Settings(openai_base_urls=" , ".join(urls) + ",", openai_api_key=KEY, model="stub-model",
                    cache_responses=False, max_retries=0, request_timeout_s=2.0)


def test_the_list_is_read_from_the_environment_and_replaces_the_single_url() -> None:
    settings = Settings.from_env({"TASKCRAFT_OPENAI_BASE_URLS": "http://a:8000/v1, http://b:8000/v1 ,",
                                  "OPENAI_BASE_URL": "http://single/v1"})
    assert settings.base_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    assert settings.active_engine == "openai"
    assert Settings(openai_base_url="http://single/v1").base_urls == ["http://single/v1"]
    assert Settings().base_urls == []


def test_calls_are_spread_over_the_replicas_in_turn(replicas: tuple[StubOpenAI, StubOpenAI]) -> None:
    a, b = replicas
    model = make_chat_model(fleet_settings(a.base_url, b.base_url), "generation")
    assert isinstance(model, ReplicatedChatOpenAI)
    answers = [invoke_text(model, [HumanMessage(f"question {i}")]) for i in range(6)]
    assert answers == ["from a", "from b"] * 3
    assert len(a.chat_requests) == len(b.chat_requests) == 3
    # The same key rule for every URL of the list as for openai_base_url.
    assert {r.headers["authorization"] for r in a.chat_requests + b.chat_requests} == {f"Bearer {KEY}"}


def test_a_failing_replica_is_skipped(replicas: tuple[StubOpenAI, StubOpenAI]) -> None:
    a, b = replicas
    model = make_chat_model(fleet_settings(a.base_url, closed_port_url(), b.base_url), "generation")
    answers = [invoke_text(model, [HumanMessage(f"question {i}")]) for i in range(6)]
    # Turns start at a, the closed port (falls over to b), b, then again.
    assert answers == ["from a", "from b", "from b"] * 2
    b.queue(error_reply(503, "overloaded"))
    # b's turn: its 503 falls over to a (the next replica), not to the caller.
    assert invoke_text(model, [HumanMessage("q")]) == "from a"


def test_structured_output_and_tool_calls_reach_the_replica_that_answers(
        replicas: tuple[StubOpenAI, StubOpenAI]) -> None:
    class Fact(BaseModel):
        answer: str
        year: int

    a, b = replicas
    for server in (a, b):
        server.default = answer_with({"answer": "Halvard", "year": 1911})
    model = make_chat_model(fleet_settings(closed_port_url(), a.base_url, b.base_url), "judge")
    facts = [invoke_structured(model, Fact, [HumanMessage("when?")]) for _ in range(3)]
    assert facts == [Fact(answer="Halvard", year=1911)] * 3
    sent = a.chat_requests + b.chat_requests
    assert len(sent) == 3 and all(r.response_format_type == "json_schema" for r in sent)
    bound = model.bind_tools([Fact])
    reply = bound.invoke([HumanMessage("call the tool")])
    assert reply.tool_calls[0]["args"] == {"answer": "Halvard", "year": 1911}


def test_when_every_replica_fails_the_error_names_them_all() -> None:
    model = make_chat_model(fleet_settings(closed_port_url(), closed_port_url()), "generation")
    every = r"Could not connect to the model endpoint http://127\.0\.0\.1:\d+/v1 \| http://127\.0\.0\.1:\d+/v1 "
    with pytest.raises(ModelUnavailableError, match=every):
        invoke_text(model, [HumanMessage("q")])
