"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

The real `ChatOpenAI` client talks to it, so its retries, timeouts and parsing are exercised.
Each chat request takes the next scripted `Reply` from a queue (or asks a default responder);
every request is recorded. Server capability knobs make it refuse `response_format` types or
tools with HTTP 400, as servers lacking those features do, or json_schema with the HTTP 500 that
llama-cpp-python's server answers (`llama_cpp_errors=True`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer: status, body (a JSON-able value or raw bytes), headers, delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def encoded_body(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def response_format_type(self) -> str | None:
        return ((self.body or {}).get("response_format") or {}).get("type")

    @property
    def uses_tools(self) -> bool:
        return bool((self.body or {}).get("tools"))


Responder = Callable[[RecordedRequest], Reply]


def completion(
    content: str | None = "",
    *,
    tool_calls: list[dict[str, Any]] | None = None,
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    model: str = "stub-model",
) -> dict[str, Any]:
    """A chat.completion body with one choice and a usage block."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def text_reply(content: str | None, **usage: int) -> Reply:
    """The model answers with plain message content (JSON text for structured requests)."""
    return Reply(body=completion(content, **usage))


def tool_call_reply(name: str, arguments: dict[str, Any] | str, **usage: int) -> Reply:
    """The model answers with one tool call; `arguments` may be a malformed string on purpose."""
    encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": "call_stub_1", "type": "function", "function": {"name": name, "arguments": encoded}}
    return Reply(body=completion(None, tool_calls=[call], **usage))


def error_reply(status: int, message: str, *, retry_after_s: float | None = None) -> Reply:
    """An OpenAI-style error body, optionally with a Retry-After header."""
    headers = {} if retry_after_s is None else {"Retry-After": str(retry_after_s)}
    body = {"error": {"message": message, "type": "stub_error", "code": status}}
    return Reply(status=status, body=body, headers=headers)


def html_reply(text: str = "<html>upstream proxy error</html>") -> Reply:
    """A 200 whose body is an HTML page, as a proxy in front of the endpoint answers when it fails."""
    return Reply(body=text.encode(), headers={"Content-Type": "text/html"})


# What llama-cpp-python's server (`python -m llama_cpp.server`) answers, with HTTP 500, to a request
# whose response_format is json_schema: its request model allows only 'text' and 'json_object'.
LLAMA_CPP_JSON_SCHEMA_ERROR = {
    "error": {
        "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                   "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
                   "'ctx': {'expected': \"'text' or 'json_object'\"}}]",
        "type": "internal_server_error",
    }
}


def answer_with(payload: dict[str, Any], **usage: int) -> Responder:
    """A responder giving `payload` in the shape each request asks for: a tool call when the
    request forces a tool, else JSON content (json_schema and JSON mode read the content)."""

    def respond(request: RecordedRequest) -> Reply:
        tools = (request.body or {}).get("tools") or []
        if tools:
            return tool_call_reply(tools[0]["function"]["name"], payload, **usage)
        return text_reply(json.dumps(payload), **usage)

    return respond


def no_script(request: RecordedRequest) -> Reply:
    """What an unscripted request gets: a loud 500 a test cannot mistake for success."""
    return error_reply(500, f"stub has no scripted reply for {request.path}")


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class StubOpenAI:
    """The server. Use as a context manager or call start()/stop().

    latency_s: added to every chat response (benchmarks).
    default: responder used when the queue is empty.
    models: ids served by GET /v1/models; None makes that endpoint 404.
    unsupported_formats: response_format types answered with HTTP 400 (e.g. {"json_schema"}).
    supports_tools: False answers requests carrying tools with HTTP 400.
    llama_cpp_errors: answer json_schema requests as llama-cpp-python's server does (HTTP 500).
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        default: Responder = no_script,
        models: Iterable[str] | None = ("stub-model",),
        unsupported_formats: Iterable[str] = (),
        supports_tools: bool = True,
        llama_cpp_errors: bool = False,
    ) -> None:
        self.latency_s = latency_s
        self.default = default
        self.models = None if models is None else list(models)
        self.unsupported_formats = set(unsupported_formats)
        self.supports_tools = supports_tools
        self.llama_cpp_errors = llama_cpp_errors
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.endswith("/chat/completions")]

    def queue(self, *replies: Reply) -> StubOpenAI:
        """Script the next chat answers, in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def start(self) -> StubOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self, request: RecordedRequest) -> Reply:
        """Record the request and choose its reply."""
        with self._lock:
            self.requests.append(request)
        if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
            return self._models_reply()
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            return error_reply(404, f"no route {request.method} {request.path}")
        if request.body is None:
            return error_reply(400, "request body is not JSON")
        refusal = self._capability_refusal(request)
        if refusal is not None:
            return refusal
        with self._lock:
            scripted = self._queue.popleft() if self._queue else None
        reply = scripted or self.default(request)
        return Reply(reply.status, reply.body, reply.headers, reply.delay_s + self.latency_s)

    def _models_reply(self) -> Reply:
        if self.models is None:
            return error_reply(404, "this server does not list models")
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "stub"} for name in self.models]
        return Reply(body={"object": "list", "data": data})

    def _capability_refusal(self, request: RecordedRequest) -> Reply | None:
        if self.llama_cpp_errors and request.response_format_type == "json_schema":
            return Reply(status=500, body=LLAMA_CPP_JSON_SCHEMA_ERROR)
        if request.response_format_type in self.unsupported_formats:
            return error_reply(400, f"response_format type '{request.response_format_type}' is not supported")
        if request.uses_tools and not self.supports_tools:
            return error_reply(400, "tools are not supported by this server")
        return None


def _handler_for(stub: StubOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; with Nagle's algorithm and delayed ACKs
        # each response would wait ~40 ms, which would swamp any latency a benchmark sets.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._serve(None)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self._serve(body if isinstance(body, dict) else None)

        def _serve(self, body: dict[str, Any] | None) -> None:
            request = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            reply = stub.answer(request)
            time.sleep(reply.delay_s)
            payload = reply.encoded_body()
            try:
                self.send_response(reply.status)
                if "Content-Type" not in reply.headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout), which is what a delay test wants

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler
