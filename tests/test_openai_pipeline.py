"""The generation pipeline (LLM engine, run executor, store) through the real ChatOpenAI client
against the stub OpenAI-compatible server, with faults injected into an otherwise sensible model."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable

import pytest

from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.runs.executor import UNAVAILABLE_ABORT_AFTER
from taskcraft_core.runs.service import RunRequest, create_run, execute_run
from taskcraft_core.schema import Chunk, GenerationRun, Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.prompt_following import PromptFollowingModel, message_text
from tests.stub_openai import (
    RecordedRequest,
    Reply,
    StubOpenAI,
    closed_port_url,
    error_reply,
    text_reply,
    tool_call_reply,
)

# A fault sees each chat request and answers it instead of the model, or lets it through (None).
Fault = Callable[[RecordedRequest], Reply | None]


class FaultyModel:
    """The prompt-following model behind faults; records the token usage of every reply it served."""

    def __init__(self, *faults: Fault) -> None:
        self.model = PromptFollowingModel()
        self.faults = list(faults)
        self.served_tokens: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        reply = next((r for fault in self.faults if (r := fault(request)) is not None), None) or self.model(request)
        usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
        with self.lock:
            self.served_tokens.append(usage["total_tokens"] if usage else 0)
        return reply


def open_workspace(settings: Settings, **changes: object) -> Workspace:
    """One sample document, at most two candidates per chunk."""
    opened = Workspace.open(settings.with_changes(max_candidates_per_chunk=2, **changes))
    report = ingest_locations([str(sample_corpus_path() / "rv_storm_petrel.md")], opened)
    assert report.documents_added == 1
    return opened


@pytest.fixture
def workspace(stub_settings: Settings) -> Workspace:
    """Two chunks: two atomic work units."""
    return open_workspace(stub_settings)


@pytest.fixture
def many_units(stub_settings: Settings) -> Workspace:
    """Enough chunks (work units) for a run to see the endpoint fail as many units in a row as make
    it give up."""
    opened = open_workspace(stub_settings, chunk_size=800)
    assert len(chunks(opened)) > UNAVAILABLE_ABORT_AFTER
    return opened


def chunks(workspace: Workspace) -> list[Chunk]:
    return workspace.store.get_chunks(workspace.store.list_documents()[0].id)


def run_atomic(workspace: Workspace, concurrency: int = 2, base_url: str | None = None) -> GenerationRun:
    request = RunRequest(kinds=["atomic"], engine="openai", concurrency=concurrency, base_url=base_url)
    run = create_run(workspace, request)
    return execute_run(workspace, run.id)


def tasks(workspace: Workspace) -> list[Task]:
    return workspace.store.list_tasks(TaskFilter(), limit=None, with_trajectory=True)


def whole_prompt(request: RecordedRequest) -> str:
    return "\n".join(message_text(m) for m in (request.body or {}).get("messages", []))


def schema_name(request: RecordedRequest) -> str | None:
    return ((request.body or {}).get("response_format") or {}).get("json_schema", {}).get("name")


def test_atomic_run_through_chat_openai_stores_verified_tasks_and_counts_every_call(
        workspace: Workspace, stub_openai: StubOpenAI) -> None:
    stub_openai.default = model = FaultyModel()
    run = run_atomic(workspace)
    assert (run.status, run.error, run.counts.model_dump()["errors"]) == ("completed", None, [])
    stored = tasks(workspace)
    assert [t.status for t in stored] == ["pending"] * 4
    assert {t.chunk_id for t in stored} == {c.id for c in chunks(workspace)}
    for task in stored:
        assert (task.engine, task.model, task.run_id, task.kind) == ("openai", "stub-model", run.id, "atomic")
        assert [(s.type, s.tool) for s in task.trajectory] == [
            ("human", None), ("ai", "search_corpus"), ("tool", "search_corpus"), ("ai", None)]
        human, call, observation, answer = task.trajectory
        assert human.content == task.question and call.args == {"query": task.question} == observation.args
        assert task.golden_answer in observation.observation and "document_id=" in observation.observation
        assert answer.content == task.golden_answer and call.tokens > 0
        check = task.verification
        assert (check.model_alone_answer, check.model_alone_score) == ("I don't know", 0)
        assert (check.agent_answer, check.agent_score, check.agent_steps) == (task.golden_answer, 2, 1)
        # question, canonical answer, model alone, two agent turns; exact matches need no judge call
        assert task.model_calls == 5
    solver_requests = [r for r in stub_openai.chat_requests if r.uses_tools]
    assert len(solver_requests) == 8
    assert {t["function"]["name"] for t in solver_requests[0].body["tools"]} == {"search_corpus", "read_document"}
    assert run.model_calls == len(stub_openai.chat_requests) == 2 + 4 * 5
    assert run.tokens == sum(model.served_tokens) > 0
    assert run.counts.model_dump()["funnel"] == {"atomic_candidates": 4, "atomic_accepted": 4, "unit_errors": 0}


@pytest.mark.parametrize("bad_reply", [text_reply("{'conclusions': [oops"), text_reply('{"facts": []}')],
                         ids=["invalid-json", "wrong-schema"])
def test_a_chunk_whose_extraction_is_always_malformed_is_noted_and_the_other_chunk_goes_on(
        workspace: Workspace, stub_openai: StubOpenAI, bad_reply: Reply) -> None:
    first, second = chunks(workspace)
    hits: list[RecordedRequest] = []

    def malformed_extraction(request: RecordedRequest) -> Reply | None:
        if schema_name(request) == "ConclusionsOut" and second.text[:200] in whole_prompt(request):
            hits.append(request)
            return bad_reply
        return None

    stub_openai.default = FaultyModel(malformed_extraction)
    run = run_atomic(workspace)
    assert len(hits) == 2  # the first answer and the retry told what was wrong
    assert "could not be used" in message_text(hits[1].body["messages"][-1])
    assert run.status == "completed" and run.error is None
    [empty] = run.counts.model_dump()["empty_units"]
    assert empty["unit"] == f"atomic:{second.id}"
    assert empty["reason"].startswith("chunk 1 of “RV Storm Petrel”: the conclusion extractor's output was "
                                      "malformed: No valid ConclusionsOut from model stub-model after 2 attempts: ")
    stored = tasks(workspace)
    assert [(t.status, t.chunk_id) for t in stored] == [("pending", first.id)] * 2
    assert sorted(run.done_units) == sorted([f"atomic:{first.id}", f"atomic:{second.id}"])
    assert run.model_calls == len(stub_openai.chat_requests) == 2 + 1 + 2 * 5


def test_agent_tool_calls_with_bad_arguments_or_unknown_tools_become_observations(
        workspace: Workspace, stub_openai: StubOpenAI) -> None:
    targeted: list[str] = []
    lock = threading.Lock()

    def clumsy_agent(request: RecordedRequest) -> Reply | None:
        """The first question's solver writes unparseable arguments, then wrong ones, then calls a
        tool that does not exist, then answers (from the model's memory)."""
        if not request.uses_tools:
            return None
        messages = request.body["messages"]
        question = next(message_text(m) for m in messages if m["role"] == "user")
        with lock:
            if not targeted:
                targeted.append(question)
        observations = sum(m["role"] == "tool" for m in messages)
        if question != targeted[0] or observations >= 3:
            return None
        return [tool_call_reply("search_corpus", '{"query": "petrel'),
                tool_call_reply("search_corpus", {"k": "many"}),
                tool_call_reply("sonar_lookup", {"depth": 5000})][observations]

    stub_openai.default = FaultyModel(clumsy_agent)
    run = run_atomic(workspace)
    assert run.status == "completed" and run.counts.model_dump()["errors"] == []
    [clumsy] = [t for t in tasks(workspace) if t.question == targeted[0]]
    assert clumsy.status == "pending" and clumsy.verification.agent_score == 2
    assert clumsy.verification.agent_steps == 3
    steps = [(s.type, s.tool, s.args) for s in clumsy.trajectory[1:-1]]
    assert steps == [
        ("ai", "search_corpus", {"raw_arguments": '{"query": "petrel'}),
        ("tool", "search_corpus", {"raw_arguments": '{"query": "petrel'}),
        ("ai", "search_corpus", {"k": "many"}), ("tool", "search_corpus", {"k": "many"}),
        ("ai", "sonar_lookup", {"depth": 5000}), ("tool", "sonar_lookup", {"depth": 5000}),
    ]
    unparseable, wrong, unknown = (s.observation for s in clumsy.trajectory if s.type == "tool")
    assert unparseable.startswith("Error: the arguments of search_corpus are not valid JSON")
    assert wrong.startswith("Error invoking tool 'search_corpus'") and "query: Field required" in wrong
    assert "sonar_lookup is not a valid tool" in unknown
    assert clumsy.trajectory[-1].content == clumsy.golden_answer


def test_a_server_failing_every_request_fails_the_run_and_loses_nothing_stored(
        many_units: Workspace, stub_openai: StubOpenAI) -> None:
    stub_openai.default = FaultyModel()
    earlier = run_atomic(many_units)
    before = {t.id: t.status for t in tasks(many_units)}
    assert earlier.status == "completed" and len(before) > 4
    stub_openai.default = lambda request: error_reply(500, "the GPU caught fire")
    run = run_atomic(many_units, concurrency=4)
    assert_failed_on_the_endpoint(many_units, run, f"The model endpoint {stub_openai.base_url} failed with HTTP 500 "
                                                   "after 1 retries: Error code: 500 - the GPU caught fire")
    assert {t.id: t.status for t in tasks(many_units)} == before
    assert many_units.store.get_run(earlier.id).status == "completed"


def assert_failed_on_the_endpoint(workspace: Workspace, run: GenerationRun, problem: str) -> None:
    """Failed with the endpoint's problem named, no unit done, nothing of this run stored."""
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith(
        f"The model endpoint kept failing ({UNAVAILABLE_ABORT_AFTER} units in a row): {problem}")
    assert len(run.counts.model_dump()["errors"]) == UNAVAILABLE_ABORT_AFTER
    assert all(e["error"].startswith(f"ModelUnavailableError: {problem}") for e in run.counts.model_dump()["errors"])
    assert run.done_units == [] and run.model_calls == 0  # calls that got no answer are not counted
    assert workspace.store.list_tasks(TaskFilter(run_ids=[run.id]), limit=None) == []


def test_a_server_failing_every_request_fails_even_a_run_of_two_units(
        workspace: Workspace, stub_openai: StubOpenAI) -> None:
    stub_openai.default = lambda request: error_reply(500, "the GPU caught fire")
    run = run_atomic(workspace)
    assert len(run.counts.model_dump()["errors"]) == 2
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith("The model endpoint kept failing (2 units in a row)")


def test_one_rate_limit_with_retry_after_is_waited_out_and_the_run_completes(
        workspace: Workspace, stub_openai: StubOpenAI) -> None:
    stub_openai.default = FaultyModel()
    stub_openai.queue(error_reply(429, "slow down", retry_after_s=0.2))
    run = run_atomic(workspace)
    assert (run.status, run.error, run.counts.model_dump()["errors"]) == ("completed", None, [])
    assert [t.status for t in tasks(workspace)] == ["pending"] * 4
    # The client retried the 429 itself (the same request again): one more request than answers counted.
    bodies = [json.dumps(request.body, sort_keys=True) for request in stub_openai.chat_requests]
    assert len(bodies) - len(set(bodies)) == 1
    assert run.model_calls == len(stub_openai.chat_requests) - 1 == 22


def test_a_refused_connection_fails_the_run_with_the_endpoint_named(many_units: Workspace) -> None:
    url = closed_port_url()
    run = run_atomic(many_units, base_url=url, concurrency=4)
    assert_failed_on_the_endpoint(many_units, run, f"Could not connect to the model endpoint {url}")
    assert "Check that the server is running" in run.error


def test_a_server_slower_than_the_timeout_fails_the_run_like_an_outage(
        many_units: Workspace, stub_openai: StubOpenAI) -> None:
    stub_openai.default = FaultyModel()
    stub_openai.latency_s = 0.6
    impatient = dataclasses.replace(
        many_units, settings=many_units.settings.with_changes(request_timeout_s=0.2, max_retries=0))
    run = run_atomic(impatient, concurrency=4)
    assert_failed_on_the_endpoint(many_units, run, f"The model endpoint {stub_openai.base_url} did not answer "
                                                   "within 0.2 s (after 0 retries)")
