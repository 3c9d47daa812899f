"""Websites on 127.0.0.1 for the explorer's tests: a directory served as it is (Debian's HTML
manuals, symlinks followed), or a few fixed pages; each server records the paths it was asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PYTHON_MANUAL = Path("/usr/share/doc/python3.11/html")


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    requested: list[str]

    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that drops a connection it no longer needs is no error worth a traceback."""


class QuietFiles(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.server.requested.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class FixedPages(QuietFiles):
    """Serves `pages` (path -> html) and `redirects` (path -> Location, a 302); `/slow.html` answers only
    after 4 s; `/robots.txt` from pages too. A POST is recorded as "POST <path>" and answered like a GET."""

    pages: dict[str, str] = {}
    redirects: dict[str, str] = {}

    def do_POST(self) -> None:  # noqa: N802
        self.server.requested.append(f"POST {self.path}")  # type: ignore[attr-defined]
        self.answer(self.path.split("?")[0])

    def do_GET(self) -> None:  # noqa: N802
        self.server.requested.append(self.path)  # type: ignore[attr-defined]
        self.answer(self.path.split("?")[0])

    def answer(self, path: str) -> None:
        if path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/slow.html":
            time.sleep(4)
        body = self.pages.get(path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if path.endswith(".txt") else "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running(server: RecordingServer) -> Iterator[RecordingServer]:
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_directory(root: Path) -> Iterator[tuple[str, RecordingServer]]:
    """`http://127.0.0.1:PORT` serving the directory (a free port, stopped at the end of the block)."""
    with running(RecordingServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(root)))) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", server


@contextmanager
def serve_pages(pages: dict[str, str], redirects: dict[str, str] | None = None
                ) -> Iterator[tuple[str, RecordingServer]]:
    handler = type("Pages", (FixedPages,), {"pages": pages, "redirects": redirects or {}})
    with running(RecordingServer(("127.0.0.1", 0), handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
