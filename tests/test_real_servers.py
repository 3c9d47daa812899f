"""Real OpenAI-compatible servers and their fault patterns, reproduced by the stub server: llama-cpp-python's
HTTP 500 for json_schema, a proxy's HTML error page answered with 200, and what a run and the CLI do
about them (one failed call fails one candidate; an early end still prints the summary)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from taskcraft_core.cli import main
from taskcraft_core.errors import ModelCallFailed, ModelUnavailableError
from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.models.chat import invoke_structured, invoke_text, make_chat_model
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from tests.prompt_following import PromptFollowingModel
from tests.stub_openai import RecordedRequest, Reply, StubOpenAI, answer_with, error_reply, html_reply, text_reply
from tests.test_openai_pipeline import FaultyModel, chunks, open_workspace, run_atomic, tasks

PROMPT = [HumanMessage("Name one fact.")]


class Fact(BaseModel):
    answer: str


def kinds(stub: StubOpenAI) -> list[str]:
    return [r.response_format_type or ("tools" if r.uses_tools else "text") for r in stub.chat_requests]


def test_llama_cpp_500_for_json_schema_falls_to_function_calling_and_is_remembered(stub_settings: Settings,
                                                                                   stub_openai: StubOpenAI) -> None:
    stub_openai.llama_cpp_errors = True
    stub_openai.default = answer_with({"answer": "42"})
    model = make_chat_model(stub_settings, "generation")
    assert invoke_structured(model, Fact, PROMPT) == Fact(answer="42")
    assert invoke_structured(model, Fact, PROMPT) == Fact(answer="42")
    # The client retries a 500 (max_retries=1) before the method is given up, once per endpoint and model.
    assert kinds(stub_openai) == ["json_schema", "json_schema", "tools", "tools"]


def test_a_500_that_does_not_name_the_method_is_still_an_outage(stub_settings: Settings,
                                                                 stub_openai: StubOpenAI) -> None:
    stub_openai.default = lambda request: Reply(status=500, body={"error": {"message": "CUDA out of memory"}})
    with pytest.raises(ModelUnavailableError, match="failed with HTTP 500"):
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert kinds(stub_openai) == ["json_schema", "json_schema"]


def test_an_html_page_mid_run_is_retried_like_a_5xx(stub_settings: Settings, stub_openai: StubOpenAI) -> None:
    model = make_chat_model(stub_settings, "generation")
    stub_openai.queue(text_reply("first"), html_reply(), text_reply("second"))
    assert invoke_text(model, PROMPT) == "first"
    assert invoke_text(model, PROMPT) == "second"
    assert len(stub_openai.chat_requests) == 3


def test_an_html_page_that_persists_mid_run_fails_that_call_only(stub_settings: Settings,
                                                                  stub_openai: StubOpenAI) -> None:
    model = make_chat_model(stub_settings, "generation")
    stub_openai.queue(text_reply("first"), html_reply(), html_reply())
    invoke_text(model, PROMPT)
    with pytest.raises(ModelCallFailed, match="not JSON 2 times \\(a proxy's error page\\?\\)"):
        invoke_text(model, PROMPT)
    assert len(stub_openai.chat_requests) == 3


def test_an_html_page_at_the_first_call_means_a_wrong_base_url(stub_settings: Settings,
                                                                stub_openai: StubOpenAI) -> None:
    stub_openai.queue(html_reply("<html>LM Studio</html>"))
    with pytest.raises(ModelUnavailableError, match="not JSON") as failure:
        invoke_text(make_chat_model(stub_settings, "generation"), PROMPT)
    assert "/v1" in failure.value.hint and len(stub_openai.chat_requests) == 1  # not retried


def test_a_run_against_llama_cpp_errors_verifies_tasks(stub_settings: Settings, stub_openai: StubOpenAI) -> None:
    stub_openai.llama_cpp_errors = True
    stub_openai.default = PromptFollowingModel()
    workspace = open_workspace(stub_settings)
    run = run_atomic(workspace, concurrency=1)
    assert run.status == "completed" and run.counts.errors == []
    assert workspace.store.count_tasks(TaskFilter(statuses=["pending"])) >= 2
    structured = [k for k in kinds(stub_openai) if k != "text"]
    assert structured[:2] == ["json_schema", "json_schema"] and "json_schema" not in structured[2:]


def agent_of(question_word: str):  # noqa: ANN201 - a fault
    def fault(request: RecordedRequest) -> Reply | None:
        messages = (request.body or {}).get("messages", [])
        asks = any(question_word in str(m.get("content")) for m in messages if m.get("role") == "user")
        solver = any(t["function"]["name"] == "search_corpus" for t in (request.body or {}).get("tools", []))
        return html_reply() if asks and solver else None
    return fault


@pytest.mark.slow
def test_proxy_pages_mid_run_cost_one_candidate_not_the_unit(stub_settings: Settings,
                                                              stub_openai: StubOpenAI) -> None:
    every_fifth = iter(range(10_000))
    flaky = FaultyModel(lambda request: html_reply() if next(every_fifth) % 5 == 4 else None)
    stub_openai.default = flaky
    workspace = open_workspace(stub_settings)
    first = run_atomic(workspace, concurrency=1)
    assert first.status == "completed" and first.counts.errors == []  # each page retried once
    verified = [t for t in tasks(workspace) if t.status == "pending"]
    assert verified
    # Now the agent's every call on one question gets the page: that candidate fails, the rest verify.
    victim = verified[0].question
    stub_openai.default = FaultyModel(agent_of(victim))
    again = open_workspace(stub_settings.with_changes(home=stub_settings.home / "again"))
    run = run_atomic(again, concurrency=1)
    assert run.status == "completed" and run.counts.errors == []
    failed = [t for t in tasks(again) if "not JSON" in (t.failure_reason or "")]
    assert [t.question for t in failed] == [victim]
    assert "a proxy's error page" in failed[0].failure_reason
    assert any(t.status == "pending" for t in tasks(again))


@pytest.mark.slow
def test_cli_prints_the_summary_of_a_run_that_ends_early_and_keeps_logs_quiet(
        stub_settings: Settings, stub_openai: StubOpenAI, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    workspace = open_workspace(stub_settings.with_changes(chunk_size=800))
    served = iter(range(10_000))
    model = PromptFollowingModel()
    # Every sample document, so the per-document caps leave several units to run.
    ingest_locations([str(sample_corpus_path())], workspace)
    # The endpoint dies after its first 150 answers (a few units' worth): the run ends early with what it made.
    stub_openai.default = lambda request: model(request) if next(served) < 150 else Reply(
        status=503, body={"error": {"message": "down"}})
    monkeypatch.setenv("TASKCRAFT_HOME", str(workspace.settings.home))
    monkeypatch.setenv("OPENAI_BASE_URL", stub_openai.base_url)
    monkeypatch.setenv("TASKCRAFT_MODEL", "stub-model")
    caplog.set_level(logging.INFO)
    code = main(["generate", "--kinds", "atomic", "--engine", "openai", "--concurrency", "1", "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 2 and summary["status"] == "failed" and summary["candidates"] > 0
    assert "kept failing" in summary["error"] and summary["calls"]["total"] > 0
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "openai")) and r.levelno < logging.WARNING]
    assert "HTTP Request" not in err


def test_verbose_lets_library_info_logs_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path))
    assert main(["runs", "--verbose"]) == 0
    assert logging.getLogger("httpx").level == logging.INFO
    assert main(["runs"]) == 0
    assert logging.getLogger("httpx").level == logging.WARNING


def test_a_5xx_or_timeout_beyond_the_retries_mid_run_fails_that_call_only(stub_settings: Settings,
                                                                           stub_openai: StubOpenAI) -> None:
    model = make_chat_model(stub_settings.with_changes(request_timeout_s=0.3), "generation")
    stub_openai.queue(text_reply("first"), *[error_reply(502, "bad gateway")] * 2, Reply(body={}, delay_s=0.6),
                      Reply(body={}, delay_s=0.6))
    assert invoke_text(model, PROMPT) == "first"
    with pytest.raises(ModelCallFailed, match=f"^The model endpoint {stub_openai.base_url} failed with HTTP 502 "
                                              "after 1 retries: Error code: 502 - bad gateway \\(The server is "
                                              "failing; check its logs or try again later.\\)$"):
        invoke_structured(model, Fact, PROMPT)
    with pytest.raises(ModelCallFailed, match="did not answer within 0.3 s \\(after 1 retries\\)"):
        invoke_text(model, PROMPT)
    # A 502 is no refusal of the method: json_schema was asked twice (one retry), no other method tried.
    assert kinds(stub_openai) == ["text", "json_schema", "json_schema", "text", "text"]


def mentioning(text: str, reply: Reply):  # noqa: ANN201 - a fault
    """Every chat call whose messages mention `text` gets `reply`, however often it is retried."""
    def fault(request: RecordedRequest) -> Reply | None:
        return reply if any(text in str(m.get("content")) for m in (request.body or {}).get("messages", [])) else None
    return fault


@pytest.fixture
def questions_by_chunk(stub_settings: Settings, stub_openai: StubOpenAI) -> dict[str, list[str]]:
    """The verified questions a fault-free run makes, by chunk position (the second run gets a fresh home)."""
    stub_openai.default = FaultyModel()
    workspace = open_workspace(stub_settings.with_changes(home=stub_settings.home / "clean"))
    assert run_atomic(workspace, concurrency=1).status == "completed"
    position = {chunk.id: chunk.position for chunk in chunks(workspace)}
    made: dict[str, list[str]] = {}
    for task in sorted(tasks(workspace), key=lambda t: t.question):
        assert task.status == "pending"
        made.setdefault(str(position[task.chunk_id]), []).append(task.question)
    assert sorted(map(len, made.values())) == [2, 2]
    return made


BAD_GATEWAY = error_reply(502, "bad gateway")


def test_a_call_failing_beyond_its_retries_fails_its_candidate_and_the_unit_goes_on(
        stub_settings: Settings, stub_openai: StubOpenAI, questions_by_chunk: dict[str, list[str]]) -> None:
    victim, sibling = questions_by_chunk["0"]
    stub_openai.default = FaultyModel(mentioning(victim, BAD_GATEWAY))
    workspace = open_workspace(stub_settings)
    clean_run_requests = len(stub_openai.chat_requests)
    run = run_atomic(workspace, concurrency=1)
    assert (run.status, run.error, run.counts.errors) == ("completed", None, [])
    assert len(run.done_units) == 2
    by_question = {t.question: t for t in tasks(workspace)}
    assert sorted(by_question) == sorted([*questions_by_chunk["0"], *questions_by_chunk["1"]])
    failed = by_question.pop(victim)
    assert (failed.status, failed.failure_reason) == (
        "failed_verification", f"model call failed: The model endpoint {stub_openai.base_url} failed with HTTP 502 "
                               "after 1 retries: Error code: 502 - bad gateway")
    assert failed.run_id == run.id and failed.chunk_id == by_question[sibling].chunk_id
    assert [t.status for t in by_question.values()] == ["pending"] * 3
    # The canonical-answer call was tried twice (one retry), and the candidate went no further.
    fault = mentioning(victim, BAD_GATEWAY)
    assert sum(fault(r) is not None for r in stub_openai.chat_requests[clean_run_requests:]) == 2
    assert (run.counts.funnel["atomic_candidates"], run.counts.funnel["atomic_accepted"]) == (4, 3)


def test_a_unit_whose_every_candidate_lost_its_call_is_an_endpoint_error_and_stays_undone(
        stub_settings: Settings, stub_openai: StubOpenAI, questions_by_chunk: dict[str, list[str]]) -> None:
    first, second = questions_by_chunk["0"]
    stub_openai.default = FaultyModel(mentioning(first, BAD_GATEWAY), mentioning(second, BAD_GATEWAY))
    workspace = open_workspace(stub_settings)
    run = run_atomic(workspace, concurrency=1)
    [error] = run.counts.errors
    assert error.unit == f"atomic:{chunks(workspace)[0].id}" and error.unit not in run.done_units
    assert error.error == (f"ModelUnavailableError: every candidate's model call failed; the last: The model "
                           f"endpoint {stub_openai.base_url} failed with HTTP 502 after 1 retries: Error code: 502 - "
                           "bad gateway")
    assert sorted(t.question for t in tasks(workspace)) == questions_by_chunk["1"]


def test_a_llama_cpp_run_that_finds_no_facts_says_why_in_its_summary(
        stub_settings: Settings, stub_openai: StubOpenAI, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # What SmolLM2-135M behind llama-cpp-python answered for two Python library pages: a forced tool
    # call with no conclusions. The summary said 0 candidates and nothing about why.
    stub_openai.llama_cpp_errors = True
    stub_openai.default = answer_with({"conclusions": []})
    workspace = open_workspace(stub_settings)
    monkeypatch.setenv("TASKCRAFT_HOME", str(workspace.settings.home))
    monkeypatch.setenv("OPENAI_BASE_URL", stub_openai.base_url)
    monkeypatch.setenv("TASKCRAFT_MODEL", "stub-model")
    code = main(["generate", "--kinds", "atomic", "--engine", "openai", "--concurrency", "1", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert (code, summary["status"], summary["candidates"], summary["errors"]) == (0, "completed", 0, [])
    first, second = chunks(workspace)
    hint = "candidates need a sentence that states a date, a number with a unit, a year or a proper name"
    assert summary["empty_units"] == [
        {"unit": f"atomic:{first.id}", "reason": f"chunk 0 of “RV Storm Petrel” has no extractable facts ({hint})"},
        {"unit": f"atomic:{second.id}", "reason": f"chunk 1 of “RV Storm Petrel” has no extractable facts ({hint})"}]
    # json_schema and the client's two retries of its 500 (the default max_retries), as the real server
    # was asked, then tool calling for every later call.
    assert kinds(stub_openai) == ["json_schema"] * 3 + ["tools"] * 2
    assert summary["calls"]["by_step"] == {"atomic.conclusions": 2}
