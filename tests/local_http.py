"""A real HTTP server on 127.0.0.1 serving fixed routes, for URL fetching tests (no other network)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = (
    b"<html><head><title>Harbour Office</title></head><body><nav><a href='/'>Home</a></nav>"
    b"<h1>Harbour Office</h1><p>The time ball dropped at 13:00 from 1 March 1935.</p>"
    b"<a href='/tides.html'>Tides</a></body></html>"
)
BIG = b"x" * 5000
SEARCH_RESULTS = (b'{"results": [{"title": "Brenna Light", "url": "https://example.org/brenna", '
                  b'"content": "A lighthouse lit in 1894."}, {"title": "Tides", "url": "https://example.org/tides"}]}')

# path -> (status, headers, body); a body of None streams BIG without a Content-Length header.
ROUTES: dict[str, tuple[int, dict[str, str], bytes | None]] = {
    "/page.html": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE),
    "/notes.txt": (200, {"Content-Type": "text/plain"}, b"Harbour notes: the quay is 640 metres long.\n"),
    "/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"),
    "/big.txt": (200, {"Content-Type": "text/plain"}, BIG),
    "/stream.txt": (200, {"Content-Type": "text/plain"}, None),
    "/moved": (302, {"Location": "/page.html"}, b""),
    "/missing": (404, {"Content-Type": "text/html"}, b"<p>not here</p>"),
    "/search?q=brenna+light&format=json": (200, {"Content-Type": "application/json"}, SEARCH_RESULTS),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        status, headers, body = ROUTES.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(BIG if body is None else body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def local_server() -> Iterator[str]:
    """The base URL of a server running for the duration of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
