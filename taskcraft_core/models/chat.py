"""Chat models for any OpenAI-compatible endpoint, and the two ways the studio calls them.

`make_chat_model` builds a `ChatOpenAI` from Settings (timeouts, retries, optional response cache).
`invoke_structured` asks for a pydantic object, falling back json_schema -> function calling ->
JSON mode for servers lacking a method, and retries a malformed answer with feedback.
`invoke_text` asks for plain text. Both translate client failures into the studio's errors:
`ModelUnavailableError` when the endpoint itself fails (unreachable, 5xx, timeouts, auth, unknown
model), `ModelCallFailed` when one call of an endpoint that answered before met a transient fault
beyond its retries, and `ModelOutputError` when one request gets no usable answer (for both, a run
records that candidate as failed and goes on).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar, cast

import openai
from langchain_core.exceptions import ContextOverflowError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError

from taskcraft_core.errors import ModelCallFailed, ModelOutputError, ModelUnavailableError
from taskcraft_core.models.cache import SQLiteResponseCache, is_cache_hit
from taskcraft_core.models.http import endpoint_has_answered, http_client
from taskcraft_core.settings import DEFAULT_BASE_URL, Settings

Role = Literal["generation", "solver", "judge"]
StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
T = TypeVar("T", bound=BaseModel)

# Best first: json_schema constrains decoding, function calling is widely served, JSON mode last.
STRUCTURED_METHODS: tuple[StructuredMethod, ...] = ("json_schema", "function_calling", "json_mode")
# Local servers (vLLM, Ollama, llama.cpp, LM Studio) ignore the key, but the client insists on one.
KEYLESS_PLACEHOLDER = "not-needed"
OPENAI_DEFAULT_BASE_URL = DEFAULT_BASE_URL
RAW_PREVIEW_CHARS = 500
# What an endpoint's error body may show a user: one line, this long (the body is the server's, not ours).
SERVER_MESSAGE_CHARS = 200
# Judge votes sample at this temperature when there are several (the reference averages 3 votes).
VOTE_TEMPERATURE = 0.7
# Words in an error body that say the structured-output method (not the endpoint) is the problem,
# e.g. llama-cpp-python's HTTP 500 "Input should be 'text' or 'json_object'" for json_schema.
METHOD_REFUSAL_WORDS = ("response_format", "json_schema", "json_object", "tool_choice", "tools")
# HTTP 400/422: the server refuses this request as invalid (an unsupported option, or the input).
_REJECTED = (openai.BadRequestError, openai.UnprocessableEntityError)


class Usage:
    """Model calls and tokens, counted from several threads at once; calls also by step (`at`)."""

    def __init__(self, calls: int = 0, tokens: int = 0) -> None:
        self.calls = calls
        self.tokens = tokens
        self.by_step: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, calls: int = 1, tokens: int = 0, step: str = "") -> None:
        with self._lock:
            self.calls += calls
            self.tokens += tokens
            if step and calls:
                self.by_step[step] = self.by_step.get(step, 0) + calls

    def merge(self, other: Usage) -> None:
        with other._lock:
            calls, tokens, steps = other.calls, other.tokens, dict(other.by_step)
        with self._lock:
            self.calls += calls
            self.tokens += tokens
            for step, n in steps.items():
                self.by_step[step] = self.by_step.get(step, 0) + n

    def at(self, step: str) -> Usage:
        """A view that counts into this usage under `step` (nested views join steps with '.')."""
        return StepUsage(self, step)

    def __repr__(self) -> str:
        return f"Usage(calls={self.calls}, tokens={self.tokens})"


class StepUsage(Usage):
    """Usage.at(step): every call added here is added to the parent, labelled with the step."""

    def __init__(self, parent: Usage, step: str) -> None:
        super().__init__()
        self.parent, self.step = parent, step

    def add(self, calls: int = 1, tokens: int = 0, step: str = "") -> None:
        super().add(calls, tokens, step)
        self.parent.add(calls, tokens, f"{self.step}.{step}" if step else self.step)

    def merge(self, other: Usage) -> None:
        for step, n in dict(other.by_step).items():
            self.add(n, 0, step)
        unlabelled = other.calls - sum(other.by_step.values())
        self.add(unlabelled, other.tokens)


def make_chat_model(settings: Settings, role: Role, *, cache_path: Path | None = None) -> BaseChatModel:
    """The chat model for one role. With `settings.cache_responses`, identical requests are answered
    from a SQLite cache (default `settings.home/llm_cache.sqlite`, or `cache_path`)."""
    cache: SQLiteResponseCache | bool = False
    if settings.cache_responses:
        cache = SQLiteResponseCache(cache_path or settings.home / "llm_cache.sqlite")
    return _chat_openai(settings, role, cache)


def _chat_openai(
    settings: Settings, role: Role, cache: SQLiteResponseCache | bool, max_tokens: int | None = None
) -> ChatOpenAI:
    urls = settings.base_urls or [OPENAI_DEFAULT_BASE_URL]
    options: dict[str, Any] = {
        "model": settings.model_for(role),
        "timeout": settings.request_timeout_s,
        "temperature": 0,
        "max_tokens": max_tokens,
        # One JSON response per call: token usage is always reported and answers cache whole.
        "disable_streaming": True,
    }

    def client(base_url: str, max_retries: int = settings.max_retries, **more: Any) -> ChatOpenAI:
        # base_url and api_key explicit so that the client never falls back to reading the environment.
        return ChatOpenAI(base_url=base_url, api_key=_key_for(settings, base_url), max_retries=max_retries,
                          http_client=http_client(base_url, max_retries), **options, **more)

    if len(urls) == 1:
        return client(urls[0], cache=cache)
    # Each replica is tried once in turn; when all failed, the first is retried with the usual backoff.
    return ReplicatedChatOpenAI(
        base_url=urls[0], api_key=_key_for(settings, urls[0]), max_retries=settings.max_retries, cache=cache,
        replicas=[client(url, max_retries=0) for url in urls], retried=[client(url) for url in urls], **options)


def _key_for(settings: Settings, base_url: str) -> SecretStr:
    """The key sent to one base URL: the one place a URL gets its key, so every replica of
    `openai_base_urls` follows the same rule as `openai_base_url`."""
    return settings.openai_api_key or SecretStr(KEYLESS_PLACEHOLDER)


# Failures of one replica that another may not have: unreachable, timed out, 5xx, rate-limited.
# A request the server rejects (400/422) or a refused key would fail on every replica alike.
FAILOVER_ERRORS: tuple[type[BaseException], ...] = (
    openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError,
)


class ReplicatedChatOpenAI(ChatOpenAI):
    """One model served by several OpenAI-compatible replicas (a vLLM fleet): each call starts at
    the next replica in turn and falls back to the others (LangChain's `with_fallbacks`) when one
    fails. Tools, structured output and the response cache work as on one ChatOpenAI: their
    request options reach the replica that answers."""

    replicas: list[ChatOpenAI] = Field(default_factory=list, exclude=True)
    retried: list[ChatOpenAI] = Field(default_factory=list, exclude=True)
    _turns: Iterator[int] = PrivateAttr(default_factory=itertools.count)

    @property
    def replica_urls(self) -> list[str]:
        return [str(replica.openai_api_base) for replica in self.replicas]

    def _chain(self) -> Runnable[Any, Any]:
        first = next(self._turns) % len(self.replicas)
        order = self.replicas[first:] + self.replicas[:first]
        return order[0].with_fallbacks([*order[1:], self.retried[first]], exceptions_to_handle=FAILOVER_ERRORS)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        message = self._chain().invoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        message = await self._chain().ainvoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])


def vote_samplers(model: BaseChatModel, votes: int) -> list[BaseChatModel]:
    """The models for `votes` judge votes. One vote keeps temperature 0; several are real samples:
    each at VOTE_TEMPERATURE with its own seed (the vote index), which also gives each vote its own
    response-cache key, so vote 2 never replays vote 1."""
    fields = type(model).model_fields
    if votes <= 1 or "temperature" not in fields or "seed" not in fields:
        return [model] * max(votes, 1)  # a model without sampling settings (a scripted one) answers as it is
    return [model.model_copy(update={"temperature": VOTE_TEMPERATURE, "seed": index}) for index in range(votes)]


def message_tokens(message: BaseMessage) -> int:
    """Tokens a model answer cost: from usage_metadata, else the provider's token_usage; 0 when
    unknown or when the answer was replayed from the response cache (it cost nothing this time)."""
    if is_cache_hit(message):
        return 0
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata:
        return int(usage_metadata.get("total_tokens") or 0)
    token_usage = message.response_metadata.get("token_usage") or {}
    return int(token_usage.get("total_tokens") or 0)


def invoke_text(model: BaseChatModel, messages: Sequence[BaseMessage], *, usage: Usage | None = None) -> str:
    """The model's text answer (may be empty: an empty answer is data for the caller to judge)."""
    try:
        answer = model.invoke(list(messages))
    except _REJECTED as rejection:
        raise _rejected_request(model, rejection) from rejection
    except Exception as error:
        raise_translated(model, error)
    _count(usage, answer)
    return answer.text


def invoke_structured(
    model: BaseChatModel,
    schema: type[T],
    messages: Sequence[BaseMessage],
    *,
    usage: Usage | None = None,
    attempts: int = 2,
) -> T:
    """An instance of `schema` from the model. A malformed, wrong-schema or empty answer is retried
    (`attempts` in total, each retry told what was wrong), then raises ModelOutputError quoting it."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    conversation = list(messages)
    failure = ""
    for _attempt in range(attempts):
        outcome = _structured_call(model, schema, conversation)
        _count(usage, outcome.raw)
        if outcome.parsed is not None:
            return outcome.parsed
        failure = outcome.failure
        # A changed conversation also keeps a cached bad answer from being replayed.
        conversation = [*messages, HumanMessage(_retry_instruction(failure))]
    raise ModelOutputError(
        _scrub(
            model, f"No valid {schema.__name__} from model {_model_name(model)} after {attempts} attempts: {failure}"
        ),
        hint="The model may be too small for structured answers; try a stronger model or more attempts.",
    )


def check_connection(settings: Settings) -> str:
    """A human summary of the endpoint: the models it lists, or (when it lists none) a 1-token chat."""
    model = _chat_openai(settings, "generation", cache=False, max_tokens=1)
    endpoint = _endpoint(model)
    configured = sorted({settings.model_for(role) for role in ("generation", "solver", "judge")})
    try:
        listed = [entry.id for entry in model.root_client.models.list()]
    except openai.NotFoundError:
        invoke_text(model, [HumanMessage("ping")])
        pinged = settings.model_for("generation")
        return f"Connected to {endpoint}: model {pinged} answered (the server does not list models)."
    except Exception as error:
        raise_translated(model, error)
    shown = ", ".join(listed[:10]) + (", …" if len(listed) > 10 else "")
    summary = f"Connected to {endpoint}: {len(listed)} models available ({shown})."
    missing = [name for name in configured if name not in listed]
    if missing:
        summary += f" Not listed by the server: {', '.join(missing)} (check the model names)."
    return summary


@dataclass(frozen=True)
class _Outcome:
    """One structured call: the raw answer (None when the client raised), the parsed object or
    a description of what was wrong with the answer."""

    raw: AIMessage | None
    parsed: Any = None
    failure: str = ""


# Per endpoint and model: the method known to work, so an unsupported one is not asked again.
_working_method: dict[Hashable, StructuredMethod] = {}
_working_method_lock = threading.Lock()


def _structured_call(model: BaseChatModel, schema: type[T], messages: list[BaseMessage]) -> _Outcome:
    """One answer, trying methods from the one known to work; a refusal of the method (`refuses_method`)
    means 'not supported here', so the next method is tried."""
    key = _capability_key(model)
    with _working_method_lock:
        known = _working_method.get(key, STRUCTURED_METHODS[0])
    methods = STRUCTURED_METHODS[STRUCTURED_METHODS.index(known) :]
    for method in methods:
        try:
            outcome = _call_with_method(model, schema, messages, method)
        except openai.APIStatusError as refusal:
            if isinstance(refusal, ContextOverflowError) or method == methods[-1]:
                if isinstance(refusal, _REJECTED):
                    raise _rejected_request(model, refusal) from refusal
                raise_translated(model, refusal)
            continue
        with _working_method_lock:
            _working_method[key] = method
        return outcome
    raise AssertionError("unreachable: the last method either returns or raises")


def _call_with_method(
    model: BaseChatModel, schema: type[T], messages: list[BaseMessage], method: StructuredMethod
) -> _Outcome:
    runnable = model.with_structured_output(schema, method=method, include_raw=True)
    prompt = _with_json_instruction(messages, schema) if method == "json_mode" else messages
    try:
        # include_raw=True: a dict with the raw message, the parsed answer and the parsing error.
        result = cast(dict[str, Any], runnable.invoke(prompt))
    except openai.APIStatusError as error:
        if refuses_method(error):
            raise
        raise_translated(model, error)
    except ValidationError as invalid:
        # The client validates json_schema answers itself and raises before returning the message.
        return _Outcome(None, failure=_describe_validation_error(invalid))
    except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as cut:
        return _Outcome(None, failure=f"the answer was cut off ({type(cut).__name__})")
    except Exception as error:
        raise_translated(model, error)
    raw: AIMessage = result["raw"]
    if result["parsed"] is not None:
        return _Outcome(raw, parsed=result["parsed"])
    return _Outcome(raw, failure=_describe_unparsed(raw, result["parsing_error"]))


# Endpoint-level refusals: every method would get the same answer, so no other method is tried.
_ENDPOINT_LEVEL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError,
                   openai.RateLimitError)


def refuses_method(error: openai.APIStatusError) -> bool:
    """Whether an HTTP error refuses the structured-output method rather than the endpoint: any 4xx
    (except auth, unknown model and rate limits), or a 5xx whose body names the option (llama-cpp-python
    answers json_schema with HTTP 500 "Input should be 'text' or 'json_object'")."""
    if 400 <= error.status_code < 500:
        return not isinstance(error, _ENDPOINT_LEVEL)
    body = f"{error.message} {json.dumps(error.body, default=str)}".lower()
    return any(word in body for word in METHOD_REFUSAL_WORDS)


def _describe_validation_error(invalid: ValidationError) -> str:
    """The json_schema path: the client validated the content itself; the input is the raw output."""
    errors = invalid.errors()
    raw = errors[0].get("input", "") if errors else ""
    return f"{_validation_summary(invalid)}; raw output: {_preview(raw)}"


def _describe_unparsed(raw: AIMessage, parsing_error: BaseException | None) -> str:
    if raw.invalid_tool_calls:
        return f"invalid tool-call arguments; raw output: {_preview(raw.invalid_tool_calls[0].get('args'))}"
    if not raw.text.strip() and not raw.tool_calls:
        return "the answer was empty"
    raw_output = raw.tool_calls[0]["args"] if raw.tool_calls else raw.text
    invalid = _validation_error_in(parsing_error)
    if invalid is not None:
        reason = _validation_summary(invalid)
    elif parsing_error is not None:
        reason = str(parsing_error).splitlines()[0] if str(parsing_error) else type(parsing_error).__name__
    else:
        reason = "the answer did not contain the requested structure"
    return f"{reason}; raw output: {_preview(raw_output)}"


def _validation_error_in(error: BaseException | None) -> ValidationError | None:
    """Parsers wrap the schema's ValidationError; its field-level detail is what a retry needs."""
    while error is not None and not isinstance(error, ValidationError):
        error = error.__cause__ or error.__context__
    return error


def _validation_summary(invalid: ValidationError) -> str:
    problems = [f"{'.'.join(map(str, item['loc'])) or 'answer'}: {item['msg']}" for item in invalid.errors()[:3]]
    return f"{invalid.error_count()} validation error(s): {'; '.join(problems)}"


def _retry_instruction(failure: str) -> str:
    return (
        f"Your previous answer could not be used: {failure}. "
        "Answer again with exactly the requested fields and valid values, and nothing else."
    )


def _with_json_instruction(messages: list[BaseMessage], schema: type[BaseModel]) -> list[BaseMessage]:
    """JSON mode does not carry the schema, so the prompt must (and must mention JSON)."""
    instruction = (
        "Reply with one JSON object, no prose, matching this JSON schema:\n"
        + json.dumps(schema.model_json_schema())
    )
    first = messages[0] if messages else None
    if isinstance(first, SystemMessage) and isinstance(first.content, str):
        # One system message: some chat templates refuse a second one.
        return [SystemMessage(f"{first.content}\n\n{instruction}"), *messages[1:]]
    return [SystemMessage(instruction), *messages]


def _count(usage: Usage | None, answer: BaseMessage | None) -> None:
    """One call per answer the server produced; replays from the cache are free."""
    if usage is None:
        return
    if answer is None:
        usage.add(calls=1)
    elif not is_cache_hit(answer):
        usage.add(calls=1, tokens=message_tokens(answer))


def _capability_key(model: BaseChatModel) -> Hashable:
    name = _model_name(model)
    return (_endpoint(model), name) if name else id(model)


def _model_name(model: BaseChatModel) -> str:
    return getattr(model, "model_name", None) or ""


def _endpoint(model: BaseChatModel) -> str:
    if isinstance(model, ReplicatedChatOpenAI):
        return " | ".join(model.replica_urls)
    return getattr(model, "openai_api_base", None) or OPENAI_DEFAULT_BASE_URL


def _scrub(model: BaseChatModel, text: str) -> str:
    """Servers sometimes echo request headers in error bodies; the key never reaches a message."""
    key = getattr(model, "openai_api_key", None)
    secret = key.get_secret_value() if isinstance(key, SecretStr) else ""
    return text.replace(secret, "***") if len(secret) >= 4 and secret != KEYLESS_PLACEHOLDER else text


def _rejected_request(model: BaseChatModel, rejection: openai.APIStatusError) -> ModelOutputError:
    """A request refused as invalid (by every method): this request fails, the endpoint is fine."""
    if isinstance(rejection, ContextOverflowError):
        hint = "The prompt is longer than the model's context; use smaller chunks or a model with a longer context."
    else:
        hint = "The server rejected the request; its message above says why (an unsupported option or input)."
    message = (f"Model {_model_name(model)} rejected the request (HTTP {rejection.status_code}): "
               f"{_server_says(model, rejection)}")
    return ModelOutputError(_scrub(model, message), hint=hint)


def _server_says(model: BaseChatModel, error: openai.APIStatusError) -> str:
    """The server's error message, scrubbed of the key, on one line and cut: an endpoint's body is
    shown, never relayed whole (scrubbed first, so a cut cannot leave half a key)."""
    text = " ".join(_scrub(model, str(error.message)).split())
    return text if len(text) <= SERVER_MESSAGE_CHARS else text[:SERVER_MESSAGE_CHARS] + "… (cut)"


# Faults of one call that another call may not meet: a 5xx that names no option, a timeout. Refused
# connections, keys and model names are the endpoint's, and fail the unit whatever the call.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (openai.APITimeoutError, openai.InternalServerError)


def raise_translated(model: BaseChatModel, error: Exception) -> NoReturn:
    """Client failures become ModelUnavailableError with a hint; anything else is a bug and surfaces.
    A transient fault that outlasted the retries (a 5xx, a timeout, a non-JSON body) at an endpoint
    that has answered JSON before in this process is ModelCallFailed: that call fails its candidate,
    not the unit or the run. Before any answer, the same fault means a wrong or dead endpoint."""
    translated = _translated(model, error)
    if isinstance(error, TRANSIENT_ERRORS) and _has_answered(model):
        translated = ModelCallFailed(translated.message, hint=translated.hint)
    raise translated from error


def _translated(model: BaseChatModel, error: Exception) -> ModelUnavailableError | ModelCallFailed:
    """The studio's error for a client failure (raises `error` itself when it is not one)."""
    endpoint, retries = _endpoint(model), getattr(model, "max_retries", 0)
    if isinstance(error, openai.APITimeoutError):
        timeout = getattr(model, "request_timeout", None)
        message = f"The model endpoint {endpoint} did not answer within {timeout} s (after {retries} retries)"
        hint = "Raise the request timeout, lower the concurrency, or check that the server is not overloaded."
    elif isinstance(error, openai.APIConnectionError):
        message = f"Could not connect to the model endpoint {endpoint}"
        hint = "Check that the server is running and that OPENAI_BASE_URL is right (it usually ends in /v1)."
    elif isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
        message = (f"The model endpoint {endpoint} refused the API key (HTTP {error.status_code}): "
                   f"{_server_says(model, error)}")
        hint = "Check OPENAI_API_KEY (or the key on the Settings page) for this endpoint."
    elif isinstance(error, openai.NotFoundError):
        message = (f"The endpoint {endpoint} does not serve model {_model_name(model)} (HTTP 404): "
                   f"{_server_says(model, error)}")
        hint = ("Check the model name (TASKCRAFT_MODEL) and that the base URL ends in /v1; "
                "'test connection' lists the models.")
    elif isinstance(error, openai.RateLimitError):
        message = f"The model endpoint {endpoint} kept rate-limiting requests (HTTP 429, {retries} retries)"
        hint = "Lower the concurrency or raise max_retries; the provider's quota may be exhausted."
    elif isinstance(error, openai.APIStatusError):
        message = (f"The model endpoint {endpoint} failed with HTTP {error.status_code} after {retries} retries: "
                   f"{_server_says(model, error)}")
        hint = "The server is failing; check its logs or try again later."
    elif _is_non_json_answer(error):
        body = error.doc if isinstance(error, json.JSONDecodeError) else str(error)
        if _has_answered(model):
            failed = f"The endpoint {endpoint} answered with something that is not JSON {retries + 1} times " \
                     f"(a proxy's error page?): {_preview(body)}"
            hint = "A transient fault of the endpoint or a proxy; resume the run to retry."
            return ModelCallFailed(_scrub(model, failed), hint=hint)
        message = f"The endpoint {endpoint} answered with something that is not JSON: {_preview(body)}"
        hint = "OPENAI_BASE_URL must point at the OpenAI-compatible API (usually ending in /v1), not a web page."
    else:
        raise error
    return ModelUnavailableError(_scrub(model, message), hint=hint)


def _has_answered(model: BaseChatModel) -> bool:
    """Whether the model's endpoint (any of its replicas) has answered a chat call with JSON before."""
    urls = model.replica_urls if isinstance(model, ReplicatedChatOpenAI) else [_endpoint(model)]
    return any(endpoint_has_answered(url) for url in urls)


def _is_non_json_answer(error: Exception) -> bool:
    """The client's two ways of failing on a 200 whose body is not JSON: declared JSON that does not
    parse, or (declared HTML) the text handed to langchain-openai, which refuses it."""
    return isinstance(error, json.JSONDecodeError) or (
        type(error) is ValueError and str(error).startswith("Unexpected response type"))


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text[:RAW_PREVIEW_CHARS] + ("…" if len(text) > RAW_PREVIEW_CHARS else ""))
