"""The model-client layer against a stub OpenAI-compatible server: the real ChatOpenAI client,
its retries and timeouts, structured-output fallbacks, the response cache and usage counting."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from taskcraft_core.errors import ModelOutputError, ModelUnavailableError
from taskcraft_core.models.chat import (
    Usage,
    check_connection,
    invoke_structured,
    invoke_text,
    make_chat_model,
    message_tokens,
)
from taskcraft_core.settings import Settings
from tests.stub_openai import (
    RecordedRequest,
    Reply,
    StubOpenAI,
    answer_with,
    closed_port_url,
    error_reply,
    text_reply,
    tool_call_reply,
)

SECRET = "sk-test-secret-0123456789"  # the key stub_settings carries


class Fact(BaseModel):
    answer: str
    year: int


GOOD = {"answer": "Humpback65B", "year": 2023}
PROMPT = [HumanMessage("Extract one fact.")]


def good_json(**usage: int) -> Reply:
    return text_reply(json.dumps(GOOD), **usage)


def request_kinds(stub: StubOpenAI) -> list[str]:
    """How each chat request asked for structure: a response_format type, 'tools' or 'text'."""
    return [
        request.response_format_type or ("tools" if request.uses_tools else "text") for request in stub.chat_requests
    ]


def last_user_text(request: RecordedRequest) -> str:
    return request.body["messages"][-1]["content"]


# --- structured output and its fallbacks ---------------------------------------------------


def test_structured_answer_through_json_schema_counts_call_and_tokens(stub_settings, stub_openai) -> None:
    stub_openai.queue(good_json(prompt_tokens=12, completion_tokens=8))
    usage = Usage()
    fact = invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT, usage=usage)
    assert fact == Fact(**GOOD)
    assert request_kinds(stub_openai) == ["json_schema"]
    assert (usage.calls, usage.tokens) == (1, 20)
    assert stub_openai.chat_requests[0].body["temperature"] == 0


def test_server_without_json_schema_falls_back_to_function_calling_and_remembers(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema"}
    stub_openai.default = answer_with(GOOD)
    model = make_chat_model(stub_settings, "generation")
    assert invoke_structured(model, Fact, PROMPT) == Fact(**GOOD)
    assert invoke_structured(model, Fact, PROMPT) == Fact(**GOOD)
    # The rejected method is asked once, not on every call.
    assert request_kinds(stub_openai) == ["json_schema", "tools", "tools"]


def test_server_without_json_schema_or_tools_falls_back_to_json_mode(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema"}
    stub_openai.supports_tools = False
    stub_openai.default = answer_with(GOOD)
    assert invoke_structured(make_chat_model(stub_settings, "judge"), Fact, PROMPT) == Fact(**GOOD)
    assert request_kinds(stub_openai) == ["json_schema", "tools", "json_object"]
    json_mode_messages = stub_openai.chat_requests[-1].body["messages"]
    # JSON mode carries no schema, so the prompt must: the system message names the fields.
    assert json_mode_messages[0]["role"] == "system"
    assert '"year"' in json_mode_messages[0]["content"] and "JSON" in json_mode_messages[0]["content"]


def test_json_mode_joins_the_schema_to_an_existing_system_message(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema"}
    stub_openai.supports_tools = False
    stub_openai.default = answer_with(GOOD)
    prompt = [SystemMessage("You extract facts."), *PROMPT]
    assert invoke_structured(make_chat_model(stub_settings, "generation"), Fact, prompt) == Fact(**GOOD)
    roles = [message["role"] for message in stub_openai.chat_requests[-1].body["messages"]]
    assert roles == ["system", "user"]
    first_message = stub_openai.chat_requests[-1].body["messages"][0]["content"]
    assert first_message.startswith("You extract facts.\n\nReply with one JSON object")


def test_server_rejecting_every_method_fails_this_request_only(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema", "json_object"}
    stub_openai.supports_tools = False
    with pytest.raises(ModelOutputError, match="HTTP 400"):
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert request_kinds(stub_openai) == ["json_schema", "tools", "json_object"]


def test_context_overflow_is_not_mistaken_for_a_missing_method(stub_settings, stub_openai) -> None:
    stub_openai.queue(error_reply(400, "maximum context length exceeded (context_length_exceeded)"))
    with pytest.raises(ModelOutputError) as failure:
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert "context" in failure.value.hint
    assert request_kinds(stub_openai) == ["json_schema"]


@pytest.mark.parametrize(
    ("bad_reply", "expected_in_message"),
    [
        (text_reply("The answer is Humpback65B."), "'The answer is Humpback65B.'"),
        (text_reply('{"answer": "Humpback65B"}'), 'year: Field required; raw output: \'{"answer": "Humpback65B"}\''),
        (text_reply(""), "the answer was empty"),
        (text_reply(None), "the answer was empty"),
    ],
    ids=["invalid-json", "wrong-schema", "empty", "null-content"],
)
def test_bad_answer_is_retried_then_raises_with_the_raw_output(
    stub_settings, stub_openai, bad_reply: Reply, expected_in_message: str
) -> None:
    stub_openai.queue(bad_reply, bad_reply)
    usage = Usage()
    with pytest.raises(ModelOutputError) as failure:
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT, usage=usage)
    assert expected_in_message in failure.value.message
    assert "after 2 attempts" in failure.value.message
    assert usage.calls == 2
    first, retry = stub_openai.chat_requests
    assert last_user_text(first) == "Extract one fact."
    assert last_user_text(retry).startswith("Your previous answer could not be used:")


def test_wrong_schema_through_function_calling_is_retried_then_raises(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema"}
    wrong = tool_call_reply("Fact", {"answer": "Humpback65B", "year": "last year"})
    stub_openai.queue(wrong, wrong)
    with pytest.raises(ModelOutputError, match="year: Input should be a valid integer") as failure:
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert """raw output: '{"answer": "Humpback65B", "year": "last year"}'""" in failure.value.message
    assert request_kinds(stub_openai) == ["json_schema", "tools", "tools"]


def test_invalid_tool_call_arguments_are_retried_then_raise(stub_settings, stub_openai) -> None:
    stub_openai.unsupported_formats = {"json_schema"}
    stub_openai.queue(tool_call_reply("Fact", '{"answer": "Humpback65B", "year":'), tool_call_reply("Fact", "{oops"))
    with pytest.raises(ModelOutputError, match="invalid tool-call arguments; raw output: '{oops'"):
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert request_kinds(stub_openai) == ["json_schema", "tools", "tools"]


def test_one_bad_answer_then_a_good_one_succeeds_with_two_calls(stub_settings, stub_openai) -> None:
    stub_openai.queue(text_reply("not json {", prompt_tokens=3, completion_tokens=1), good_json())
    usage = Usage()
    assert invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT, usage=usage) == Fact(**GOOD)
    assert len(stub_openai.chat_requests) == 2
    # The failed json_schema answer never reaches us as a message, so only the good one's tokens count.
    assert (usage.calls, usage.tokens) == (2, 15)


# --- transport faults ------------------------------------------------------------------------


def test_rate_limit_is_retried_after_the_servers_retry_after(stub_settings, stub_openai) -> None:
    stub_openai.queue(error_reply(429, "slow down", retry_after_s=0.3), good_json())
    started = time.monotonic()
    assert invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT) == Fact(**GOOD)
    assert time.monotonic() - started >= 0.3
    assert len(stub_openai.chat_requests) == 2


def test_repeated_server_errors_raise_unavailable(stub_settings, stub_openai) -> None:
    failing = error_reply(500, "upstream exploded", retry_after_s=0.01)
    stub_openai.queue(failing, failing)
    with pytest.raises(ModelUnavailableError, match="HTTP 500 after 1 retries: .*upstream exploded") as failure:
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert failure.value.hint
    assert len(stub_openai.chat_requests) == 2  # the first try and one retry


def test_rate_limit_that_persists_raises_unavailable(stub_settings, stub_openai) -> None:
    limited = error_reply(429, "quota", retry_after_s=0.01)
    stub_openai.queue(limited, limited)
    with pytest.raises(ModelUnavailableError, match="HTTP 429") as failure:
        invoke_text(make_chat_model(stub_settings, "solver"), PROMPT)
    assert "concurrency" in failure.value.hint


def test_slow_server_times_out_as_unavailable(stub_settings, stub_openai) -> None:
    stub_openai.queue(Reply(body=json.loads(json.dumps(good_json().body)), delay_s=1.5))
    settings = stub_settings.with_changes(request_timeout_s=0.3, max_retries=0)
    with pytest.raises(ModelUnavailableError, match="did not answer within 0.3 s"):
        invoke_structured(make_chat_model(settings, "generation"), Fact, PROMPT)


def test_connection_refused_is_unavailable_with_a_hint(stub_settings) -> None:
    settings = stub_settings.with_changes(openai_base_url=closed_port_url(), max_retries=0)
    with pytest.raises(ModelUnavailableError, match="Could not connect") as failure:
        invoke_text(make_chat_model(settings, "generation"), PROMPT)
    assert "OPENAI_BASE_URL" in failure.value.hint


def test_a_body_that_is_not_json_points_at_the_base_url(stub_settings, stub_openai) -> None:
    stub_openai.queue(Reply(body=b"<html>LM Studio</html>"))
    with pytest.raises(ModelUnavailableError, match="not JSON: '<html>LM Studio</html>'") as failure:
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT)
    assert "/v1" in failure.value.hint


def test_unknown_model_is_unavailable_with_a_hint(stub_settings, stub_openai) -> None:
    stub_openai.queue(error_reply(404, "model 'stub-model' not found"))
    with pytest.raises(ModelUnavailableError, match="does not serve model stub-model") as failure:
        invoke_text(make_chat_model(stub_settings, "generation"), PROMPT)
    assert "TASKCRAFT_MODEL" in failure.value.hint


# --- the key never shows --------------------------------------------------------------------


def test_api_key_is_sent_but_never_shown(stub_settings, stub_openai) -> None:
    # A careless server echoes the request's Authorization header in its error body.
    stub_openai.default = lambda request: error_reply(401, f"bad key: {request.headers['authorization']}")
    with pytest.raises(ModelUnavailableError) as failure:
        invoke_text(make_chat_model(stub_settings, "generation"), PROMPT)
    assert stub_openai.chat_requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(failure.value)
    assert "bad key: Bearer ***" in failure.value.message
    assert "OPENAI_API_KEY" in failure.value.hint
    assert SECRET not in repr(stub_settings) and SECRET not in str(stub_settings)


def test_keyless_local_server_gets_a_placeholder_key(stub_settings, stub_openai) -> None:
    stub_openai.queue(text_reply("hello"))
    keyless = stub_settings.with_changes(openai_api_key=None)
    assert invoke_text(make_chat_model(keyless, "generation"), PROMPT) == "hello"
    assert stub_openai.chat_requests[0].headers["authorization"] == "Bearer not-needed"


# --- models per role, text, tokens, usage -----------------------------------------------------


def test_each_role_gets_its_model_timeout_and_retries(stub_settings, stub_openai) -> None:
    settings = stub_settings.with_changes(solver_model="solver-7b", judge_model="judge-70b")
    names = {role: make_chat_model(settings, role).model_name for role in ("generation", "solver", "judge")}
    assert names == {"generation": "stub-model", "solver": "solver-7b", "judge": "judge-70b"}
    model = make_chat_model(settings, "judge")
    assert (model.request_timeout, model.max_retries, model.temperature) == (2.0, 1, 0)
    stub_openai.queue(text_reply("2"))
    invoke_text(model, PROMPT)
    assert stub_openai.chat_requests[0].body["model"] == "judge-70b"


def test_invoke_text_returns_content_and_counts_usage(stub_settings, stub_openai) -> None:
    stub_openai.queue(text_reply("Paris", prompt_tokens=7, completion_tokens=2), text_reply(""))
    usage = Usage()
    model = make_chat_model(stub_settings, "solver")
    assert invoke_text(model, PROMPT, usage=usage) == "Paris"
    assert invoke_text(model, PROMPT, usage=usage) == ""
    assert (usage.calls, usage.tokens) == (2, 9 + 15)


def test_message_tokens_reads_usage_metadata_then_token_usage() -> None:
    with_metadata = AIMessage("x", usage_metadata={"input_tokens": 4, "output_tokens": 3, "total_tokens": 7})
    with_token_usage = AIMessage("x", response_metadata={"token_usage": {"total_tokens": 11}})
    counted = [message_tokens(with_metadata), message_tokens(with_token_usage), message_tokens(AIMessage("x"))]
    assert counted == [7, 11, 0]


def test_usage_counts_exactly_from_many_threads() -> None:
    usage = Usage()
    workers = [threading.Thread(target=lambda: [usage.add(tokens=3) for _ in range(1000)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = Usage(calls=2, tokens=5)
    total.merge(usage)
    assert (usage.calls, usage.tokens) == (8000, 24000)
    assert (total.calls, total.tokens) == (8002, 24005)


# --- response cache ---------------------------------------------------------------------------


def cached_settings(stub_settings: Settings) -> Settings:
    return stub_settings.with_changes(cache_responses=True)


def test_identical_call_is_answered_from_the_cache_even_after_a_restart(stub_settings, stub_openai) -> None:
    settings = cached_settings(stub_settings)
    stub_openai.queue(good_json(prompt_tokens=12, completion_tokens=8))
    usage = Usage()
    assert invoke_structured(make_chat_model(settings, "generation"), Fact, PROMPT, usage=usage) == Fact(**GOOD)
    # A new model object on the same data home stands for a re-run in a new process.
    assert invoke_structured(make_chat_model(settings, "generation"), Fact, PROMPT, usage=usage) == Fact(**GOOD)
    assert len(stub_openai.chat_requests) == 1
    assert (usage.calls, usage.tokens) == (1, 20)  # the replay is free
    assert (settings.home / "llm_cache.sqlite").is_file()


def test_cache_keeps_models_and_prompts_apart(stub_settings, stub_openai, tmp_path: Path) -> None:
    settings = cached_settings(stub_settings).with_changes(judge_model="judge-70b")
    stub_openai.queue(text_reply("a"), text_reply("b"), text_reply("c"))
    cache_path = tmp_path / "elsewhere.sqlite"
    assert invoke_text(make_chat_model(settings, "generation", cache_path=cache_path), PROMPT) == "a"
    assert invoke_text(make_chat_model(settings, "judge", cache_path=cache_path), PROMPT) == "b"
    assert invoke_text(make_chat_model(settings, "judge", cache_path=cache_path), [HumanMessage("Other")]) == "c"
    assert invoke_text(make_chat_model(settings, "judge", cache_path=cache_path), PROMPT) == "b"
    assert len(stub_openai.chat_requests) == 3
    assert cache_path.is_file() and not (settings.home / "llm_cache.sqlite").exists()


def test_a_cached_bad_answer_does_not_block_the_retry(stub_settings, stub_openai) -> None:
    settings = cached_settings(stub_settings)
    stub_openai.unsupported_formats = {"json_schema"}  # function calling: bad arguments are cached
    stub_openai.queue(tool_call_reply("Fact", "{oops"), tool_call_reply("Fact", GOOD))
    assert invoke_structured(make_chat_model(settings, "generation"), Fact, PROMPT) == Fact(**GOOD)
    assert invoke_structured(make_chat_model(settings, "generation"), Fact, PROMPT) == Fact(**GOOD)
    # The re-run replays the bad answer and the corrected one; the retry asked differently.
    assert request_kinds(stub_openai) == ["json_schema", "tools", "tools"]


def test_cache_can_be_switched_off(stub_settings, stub_openai) -> None:
    stub_openai.queue(text_reply("a"), text_reply("b"))
    model = make_chat_model(stub_settings, "generation")  # stub_settings: cache_responses=False
    assert [invoke_text(model, PROMPT), invoke_text(model, PROMPT)] == ["a", "b"]
    assert not (stub_settings.home / "llm_cache.sqlite").exists()


# --- test connection ------------------------------------------------------------------------


def test_check_connection_lists_models_and_flags_unlisted_ones(stub_settings, stub_openai) -> None:
    stub_openai.models = ["stub-model", "judge-70b"]
    assert check_connection(stub_settings) == (
        f"Connected to {stub_openai.base_url}: 2 models available (stub-model, judge-70b)."
    )
    summary = check_connection(stub_settings.with_changes(solver_model="missing-3b"))
    assert summary.endswith("Not listed by the server: missing-3b (check the model names).")
    assert stub_openai.chat_requests == []


def test_check_connection_without_a_model_list_sends_a_one_token_chat(stub_settings, stub_openai) -> None:
    stub_openai.models = None
    stub_openai.queue(text_reply("p"))
    assert check_connection(stub_settings) == (
        f"Connected to {stub_openai.base_url}: model stub-model answered (the server does not list models)."
    )
    (ping,) = stub_openai.chat_requests
    assert ping.body.get("max_completion_tokens", ping.body.get("max_tokens")) == 1


def test_check_connection_failure_raises_with_a_hint(stub_settings) -> None:
    settings = stub_settings.with_changes(openai_base_url=closed_port_url(), max_retries=0)
    with pytest.raises(ModelUnavailableError, match="Could not connect") as failure:
        check_connection(settings)
    assert failure.value.hint


# --- misuse ---------------------------------------------------------------------------------


def test_structured_call_needs_at_least_one_attempt(stub_settings, stub_openai) -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1, got 0"):
        invoke_structured(make_chat_model(stub_settings, "generation"), Fact, PROMPT, attempts=0)
    assert stub_openai.requests == []


def test_text_request_the_server_refuses_fails_this_request_only(stub_settings, stub_openai) -> None:
    stub_openai.queue(error_reply(422, "messages: field required"))
    with pytest.raises(ModelOutputError, match=r"rejected the request \(HTTP 422\).*messages: field required"):
        invoke_text(make_chat_model(stub_settings, "generation"), PROMPT)


# --- scripted chat models (what pipeline tests inject) ------------------------------------


class ScriptedChatModel(GenericFakeChatModel):
    """Answers from a script; tools are accepted and ignored, as in the agent tests."""

    def bind_tools(self, tools, **kwargs):  # type: ignore[no-untyped-def, override]
        return self


def test_scripted_model_works_with_structured_calls_and_usage() -> None:
    def fact_call(arguments: dict) -> AIMessage:
        return AIMessage(
            "",
            tool_calls=[{"name": "Fact", "args": arguments, "id": "call_1"}],
            usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        )

    model = ScriptedChatModel(messages=iter([fact_call({"answer": "x"}), fact_call(GOOD)]))
    usage = Usage()
    assert invoke_structured(model, Fact, PROMPT, usage=usage) == Fact(**GOOD)
    assert (usage.calls, usage.tokens) == (2, 14)
