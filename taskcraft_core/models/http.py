"""The HTTP transport under the chat models: a 200 answer to a chat call whose body is not JSON (a
proxy's HTML error page) is retried like a 5xx, once the endpoint has answered JSON before; before
that, a non-JSON answer means a wrong base URL and goes straight back to the client.

Endpoints that have answered JSON are remembered per base URL for the life of the process.
"""

from __future__ import annotations

import json
import threading
import time

import httpx2 as httpx  # the HTTP library the openai client (3.x) is built on
import openai

BACKOFF_S = 0.5  # first retry delay; doubled per retry, as the OpenAI client does for 5xx
MAX_BACKOFF_S = 8.0

_answered: set[str] = set()
_answered_lock = threading.Lock()


def endpoint_has_answered(base_url: str) -> bool:
    """Whether a chat call to this endpoint has had a JSON answer in this process."""
    with _answered_lock:
        return base_url.rstrip("/") in _answered


def forget_endpoints() -> None:
    """Forget which endpoints have answered (a test's server may reuse a port another one had)."""
    with _answered_lock:
        _answered.clear()


def _mark_answered(base_url: str) -> None:
    with _answered_lock:
        _answered.add(base_url.rstrip("/"))


def _looks_json(headers: httpx.Headers, raw: bytes) -> bool:
    if headers.get("content-encoding"):
        return "html" not in headers.get("content-type", "")  # compressed: trust the declared type
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


class NonJSONRetryTransport(httpx.BaseTransport):
    """Retries (up to `retries` times, with backoff) a chat call answered 200 with a non-JSON body,
    when the endpoint has answered JSON before."""

    def __init__(self, base_url: str, retries: int, backoff_s: float = BACKOFF_S) -> None:
        self.base_url = base_url
        self.retries = retries
        self.backoff_s = backoff_s
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            response = self.inner.handle_request(request)
            if response.status_code != 200 or not request.url.path.endswith("/chat/completions"):
                return response
            raw = b"".join(response.iter_raw())
            response.close()
            answer = httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
                                    request=request, extensions=response.extensions)
            if _looks_json(response.headers, raw):
                _mark_answered(self.base_url)
                return answer
            if attempt >= self.retries or not endpoint_has_answered(self.base_url):
                return answer
            time.sleep(min(self.backoff_s * 2**attempt, MAX_BACKOFF_S))
            attempt += 1

    def close(self) -> None:
        self.inner.close()


def http_client(base_url: str, retries: int) -> httpx.Client:
    """The OpenAI client's own defaults (timeouts, limits, redirects) over the retrying transport."""
    return openai.DefaultHttpxClient(transport=NonJSONRetryTransport(base_url, retries))
