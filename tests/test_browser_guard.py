"""The browser session's guard and robustness on sites served on 127.0.0.1: redirect hops, WebSockets
and form POSTs meet the URL rules; a page whose script never ends, a page that reloads itself and a
huge page end a step with a clear error; same-site compares sites, not spellings of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from taskcraft_core.agent.browser import (
    PAGE_TEXT_CHARS,
    BrowserLimits,
    BrowserSession,
    chromium_available,
    launch_options,
    site_of,
)
from taskcraft_core.errors import IngestError, TaskCraftError
from taskcraft_core.settings import Settings
from tests.site_pages import harbour_site
from tests.site_server import serve_pages

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(Settings()), reason="no Chromium to drive")]


@contextmanager
def session_on(start_url: str, tmp_path: Path, page_timeout_s: float = 2.0, **settings: object
               ) -> Iterator[BrowserSession]:
    limits = BrowserLimits(allow_private_urls=True, rate_limit_s=0.0, page_timeout_s=page_timeout_s)
    with BrowserSession(start_url, Settings(home=tmp_path / "home", allow_private_urls=True, **settings),
                        limits) as session:
        yield session


def html(body: str) -> str:
    return f"<html><head><title>Test</title></head><body><main>{body}</main></body></html>"


def test_every_redirect_hop_meets_the_url_rules(tmp_path: Path) -> None:
    with serve_pages({"/secret.html": html("secret")}) as (other_url, other), \
            serve_pages({"/index.html": html("<p>Home</p>")},
                        {"/moved": "/index.html", "/away": f"{other_url}/secret.html", "/hop": "/away"}) as (url, _):
        with session_on(f"{url}/index.html", tmp_path) as session:
            assert session.open_url(f"{url}/moved").url == f"{url}/index.html"  # a same-site redirect is followed
            for path in ("/away", "/hop"):  # /hop -> /away (allowed) -> the other site: the second hop is routed
                with pytest.raises(TaskCraftError, match="refused .*same-site rule"):
                    session.open_url(f"{url}{path}")
            assert [r.url for r in session.refused] == [f"{other_url}/secret.html"] * 2
    assert other.requested == []


def test_a_websocket_to_another_site_is_never_opened(tmp_path: Path) -> None:
    with serve_pages({}) as (other_url, other):
        socket_url = other_url.replace("http:", "ws:") + "/chat"
        page = html(f"<p id='s'>opening</p><script>const ws = new WebSocket('{socket_url}');"
                    "ws.onclose = () => document.getElementById('s').textContent = 'closed';</script>")
        with serve_pages({"/index.html": page}) as (url, _), session_on(f"{url}/index.html", tmp_path) as session:
            session.open_url(f"{url}/index.html")
            time.sleep(0.5)
            assert session.read_page().text == "closed"
            assert [(r.url, r.reason) for r in session.refused] == [
                (socket_url, f"{other_url.split('//')[1]} is another site (same-site rule)")]
    assert other.requested == []


def test_a_form_post_is_refused_and_never_reaches_the_site(tmp_path: Path) -> None:
    page = html("<form method='post' action='/comment'><input type='text' name='comment'></form>")
    with serve_pages({"/index.html": page, "/comment": html("thanks")}) as (url, server), \
            session_on(f"{url}/index.html", tmp_path) as session:
        session.open_url(f"{url}/index.html")
        with pytest.raises(TaskCraftError, match="only GET navigations"):
            session.type_and_submit(1, "hello")
    assert [path for path in server.requested if path.startswith("POST")] == []


@pytest.mark.slow
def test_a_page_whose_script_never_ends_stops_the_browser_with_a_clear_error(tmp_path: Path) -> None:
    page = html("<p>Busy</p><script>setTimeout(() => { while (true) {} }, 1500)</script>")
    with serve_pages({"/index.html": page}) as (url, _):
        session = session_on(f"{url}/index.html", tmp_path, page_timeout_s=0.5)
        with session as opened:
            assert opened.open_url(f"{url}/index.html").text == "Busy"
            time.sleep(2)
            began = time.monotonic()
            with pytest.raises(TaskCraftError, match="the page stopped answering within 17 s"):
                opened.read_page()
            assert time.monotonic() - began < 25
            assert opened.budget_left() == "the page stopped answering within 17 s; the browser was stopped"
            began = time.monotonic()
        assert time.monotonic() - began < 10  # closing does not wait on the stuck page


def test_a_page_that_reloads_itself_fails_a_read_with_a_taskcraft_error_at_worst(tmp_path: Path) -> None:
    page = html("<p>Again</p><script>setTimeout(() => location.reload(), 5)</script>")
    with serve_pages({"/index.html": page}) as (url, _), session_on(f"{url}/index.html", tmp_path) as session:
        outcomes = []
        for action in [lambda: session.open_url(f"{url}/index.html")] + [session.read_page] * 15:
            try:
                outcomes.append(action().text)
            except TaskCraftError as error:
                outcomes.append(error.message.split(" (")[0])
        assert set(outcomes) <= {"Again", "the page could not be read"}


def test_a_huge_page_is_read_in_part_and_not_stored(tmp_path: Path) -> None:
    page = html("<p>" + "word " * 60_000 + "</p>")
    with serve_pages({"/index.html": page}) as (url, _), \
            session_on(f"{url}/index.html", tmp_path, url_max_bytes=100_000) as session:
        assert len(session.open_url(f"{url}/index.html").text) == PAGE_TEXT_CHARS - 1  # the cut word's space
        with pytest.raises(IngestError, match=r"the page is larger than the .* limit \(url_max_bytes\)"):
            session.html()


def test_same_site_compares_scheme_host_and_port_not_their_spelling(tmp_path: Path) -> None:
    assert site_of("https://Docs.Example.com/") == site_of("https://docs.example.com:443/a") == \
        ("https", "docs.example.com", 443)
    assert site_of("ws://Host/chat") == site_of("http://host:80/") != site_of("http://host:8080/")
    session = BrowserSession("http://LocalHost:80/", Settings(home=tmp_path), BrowserLimits(allow_private_urls=True))
    assert session.refusal("http://localhost/a.html", navigation=True) is None
    assert session.refusal("http://localhost:8080/a.html", navigation=True) == \
        "localhost:8080 is another site (same-site rule)"


def test_a_link_with_an_invalid_port_is_refused_with_a_reason(tmp_path: Path) -> None:
    for same_site in (True, False):
        limits = BrowserLimits(allow_private_urls=True, same_site=same_site)
        session = BrowserSession("http://localhost/", Settings(home=tmp_path), limits)
        assert session.refusal("http://localhost:99999/", navigation=True) == \
            "not a valid URL (Port out of range 0-65535)"


def test_the_browser_leaves_signals_to_the_studio() -> None:
    options = launch_options(Settings(), "http://127.0.0.1:8000/", None)
    assert (options["handle_sigint"], options["handle_sigterm"], options["handle_sighup"]) == (False, False, False)


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_cancels_the_exploration_after_its_step_and_keeps_the_browser_to_close(
        tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group (the CLI, Playwright's driver): the first one
    must not kill the browser under the exploration; the run ends cancelled, with its summary."""
    with serve_pages({}) as (other_url, _), serve_pages(harbour_site(other_url)) as (url, server):
        command = [sys.executable, "-m", "taskcraft_core", "explore", f"{url}/index.html", "--allow-private-urls",
                   "--max-pages", "12", "--engine", "offline", "--json"]
        environment = os.environ | {"TASKCRAFT_HOME": str(tmp_path / "home")}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=environment, start_new_session=True)
        deadline = time.monotonic() + 60
        while "/index.html" not in server.requested and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    summary = json.loads(out)
    assert summary["status"] == "cancelled" and summary["pages_visited"] >= 1
