"""A live website as an environment: a headless Chromium driven through Playwright, and the browser
tools the explorer and the executor use (open_link, go_back, read_page, type_and_submit,
select_option). Each tool returns a text observation: the page title, its URL, an excerpt of its
main text, its numbered links and the form fields found.

Every request the page makes (navigation, script, XHR, image) passes the URL guard (`check_url`)
and, by default, the same-site rule; navigations must also be allowed by the site's robots.txt
(fetched through the guard). Page loads are spaced by a rate limit and counted against a budget of
pages and seconds. Playwright's sync API is bound to the thread that started it, so one browser
thread owns it and every call is handed to that thread (the agent runs tools in its own threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from taskcraft_core.errors import IngestError, TaskCraftError, UnsafeURLError
from taskcraft_core.ingest.web import IPAddress, check_url, fetch_url, human_size
from taskcraft_core.settings import Settings

DEBIAN_CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed and the browser must not phone home: no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
USER_AGENT = "TaskCraftStudio"
VIEWPORT = {"width": 1280, "height": 900}
SCREENSHOT_SCALE = 0.5  # 1280 css px -> a 640 px wide JPEG
SCREENSHOT_QUALITY = 50
EXCERPT_CHARS = 1500
READ_PART_CHARS = 4000
MAX_LINKS = 60
SETTLE_S = 3.0  # a page's text may change after load (a search page fills its results by script)
QUIET_S = 0.15  # a page is settled when its DOM has not changed for this long ...
QUIET_AFTER_FORM_S = 0.45  # ... or this long after a form (a search loads its index, then lists results)
# Resolves once the DOM has not changed for `quiet` ms (or after `most` ms in any case).
QUIET_JS = """([quiet, most]) => new Promise(resolve => {
  let timer;
  const done = () => { observer.disconnect(); resolve(true); };
  const observer = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, quiet); });
  observer.observe(document, {subtree: true, childList: true, characterData: true});
  timer = setTimeout(done, quiet);
  setTimeout(done, most);
})"""
LOCAL_SCHEMES = ("data", "blob", "about")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
PAGE_TEXT_CHARS = 200_000  # the most main text read off one page (a huge page is cut, not carried whole)
MAX_REDIRECTS = 10
READ_ATTEMPTS = 2  # a page that replaces its document while it is read is read once more
LAUNCH_WITHIN_S = 60.0  # starting Chromium on a busy machine
ANSWER_MARGIN_S = 5.0  # beyond the page timeouts and settle time, before a browser that does not answer is stopped

T = TypeVar("T")


class BrowserBudgetSpent(TaskCraftError):
    """The exploration's budget of pages or seconds is used up."""


class BrowserLimits(BaseModel):
    """What one browser session may do: where, how fast, how much."""

    same_site: bool = True
    allow_private_urls: bool = False
    max_pages: int = Field(40, ge=1)
    max_seconds: float = Field(300.0, gt=0)
    rate_limit_s: float = Field(0.2, ge=0)
    page_timeout_s: float = Field(15.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> BrowserLimits:
        values: dict[str, Any] = dict(
            allow_private_urls=settings.allow_private_urls, max_pages=settings.explore_max_pages,
            max_seconds=settings.explore_max_seconds, rate_limit_s=settings.explore_rate_limit_s,
            page_timeout_s=settings.explore_page_timeout_s)
        return cls(**values | {k: v for k, v in changes.items() if v is not None})


class LinkSeen(BaseModel):
    """A link of the current page: its number in observations, its text and where it leads."""

    number: int
    text: str
    url: str
    in_main: bool = Field(False, description="Inside the page's main content (not its navigation or sidebar).")


class FieldSeen(BaseModel):
    """A form control of the current page the tools can use: a text field or a select."""

    number: int
    kind: str = Field(description="search (a text field of a search form), text, or select.")
    name: str
    label: str = ""
    form_action: str = ""
    options: list[str] = Field(default_factory=list)


class PageView(BaseModel):
    """What the browser shows: title, URL, main text, links, fields and a content fingerprint."""

    url: str
    title: str
    text: str
    links: list[LinkSeen] = Field(default_factory=list)
    fields: list[FieldSeen] = Field(default_factory=list)
    fingerprint: str = ""

    def observation(self, start: int = 0, length: int = EXCERPT_CHARS) -> str:
        """The page as a tool observation (the text from `start`, `length` characters of it)."""
        part = self.text[start:start + length]
        more = f" … ({len(self.text) - start - len(part)} more characters: read_page part {start // length + 2})" \
            if start + len(part) < len(self.text) else ""
        links = "\n".join(f"[{link.number}] {link.text} -> {link.url}" for link in self.links) or "(none)"
        fields = "\n".join(describe_field(f) for f in self.fields) or "(none)"
        return (f"Page: {self.title}\nURL: {self.url}\nText: {part}{more}\n"
                f"Links ({len(self.links)}):\n{links}\nFields:\n{fields}")


def describe_field(found: FieldSeen) -> str:
    label = f" “{found.label}”" if found.label else ""
    if found.kind == "select":
        return f"{{{found.number}}} select {found.name!r}{label}: options " + " | ".join(found.options)
    return f"{{{found.number}}} {found.kind} box {found.name!r}{label}" + \
        (f" (form goes to {found.form_action})" if found.form_action else "")


def fingerprint(text: str) -> str:
    """Same main text, same fingerprint (whitespace does not count)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def browser_executable(settings: Settings) -> str | None:
    """The configured browser; else Debian's chromium when present; None: Playwright's own browser."""
    if settings.browser_executable:
        return settings.browser_executable
    return DEBIAN_CHROMIUM if os.path.exists(DEBIAN_CHROMIUM) else None


def launch_args(start_url: str, pinned: IPAddress | None) -> list[str]:
    """Chromium's arguments; with the address the URL guard checked for the start URL's host, the
    browser connects to that address instead of resolving the name again (as fetch_url does: a
    second lookup could answer with a private address)."""
    host = urlsplit(start_url).hostname
    if pinned is None or host is None:
        return list(CHROMIUM_ARGS)
    address = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    return [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {host} {address}"]


def launch_options(settings: Settings, start_url: str, pinned: IPAddress | None) -> dict[str, Any]:
    """Playwright's launch options. Ctrl-C, SIGTERM and SIGHUP are the studio's to handle (a cancel ends
    the run, then the session closes the browser): Playwright must not kill the browser on the first one."""
    return {"executable_path": browser_executable(settings), "args": launch_args(start_url, pinned),
            "handle_sigint": False, "handle_sigterm": False, "handle_sighup": False}


def site_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host in lower case, port or the scheme's default): what two URLs of one site share
    (ws: counts as http:, wss: as https:). Raises ValueError for a port that is no port."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


def http_equivalent(url: str) -> str:
    """A WebSocket URL as the http(s) URL the URL guard judges (ws: -> http:, wss: -> https:)."""
    scheme, rest = url.split(":", 1)
    return {"ws": "http", "wss": "https"}.get(scheme.lower(), scheme) + ":" + rest


def redirect_target(url: str, response: Any) -> str | None:
    """Where a 3xx response sends the browser (None when it is no redirect)."""
    location = response.headers.get("location") if 300 <= response.status < 400 else None
    return urljoin(url, location) if location else None


def chromium_available(settings: Settings) -> bool:
    """Whether a configured or Debian browser is there to drive (Playwright's own is not looked for)."""
    executable = browser_executable(settings)
    return executable is not None and os.path.exists(executable)


# The page's main text, links and controls, read in the page (one round trip).
READ_PAGE_JS = """(maxChars) => {
  const main = document.querySelector('[role=main], main, article, .body, #content') || document.body;
  const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  const links = [...document.querySelectorAll('a[href]')].filter(visible)
    .map(a => ({text: (a.innerText || a.title || '').trim().replace(/\\s+/g, ' '), href: a.href,
                inMain: main !== document.body && main.contains(a)}))
    .filter(l => l.text && !l.href.startsWith('javascript:'));
  const labelOf = (e) => (e.labels && e.labels[0] ? e.labels[0].innerText : '') || e.getAttribute('aria-label')
    || e.placeholder || '';
  const fields = [...document.querySelectorAll('input, textarea, select')].filter(visible)
    .filter(e => e.tagName !== 'INPUT' || ['text', 'search', ''].includes((e.getAttribute('type') || '').toLowerCase()))
    .map((e, i) => (e.setAttribute('data-taskcraft-field', String(i + 1)), e))
    .map(e => ({tag: e.tagName.toLowerCase(), name: e.name || e.id || '', label: labelOf(e).trim(),
      action: e.form ? e.form.action : '',
      search: !!(e.form && ((e.form.getAttribute('role') || '') + e.form.className + e.form.action + e.name)
        .toLowerCase().match(/search|[?&/]q\\b|^q$/)) || (e.getAttribute('type') || '') === 'search',
      options: e.tagName === 'SELECT' ? [...e.options].map(o => o.text.trim()) : []}));
  // inline code as `code` (as ingestion writes it), read off the live page and put back at once
  const codes = [...main.querySelectorAll('code')].filter(c => !c.closest('pre'));
  const saved = codes.map(c => [...c.childNodes]);
  codes.forEach(c => { c.textContent = '`' + c.textContent + '`'; });
  const text = main.innerText.slice(0, maxChars);
  codes.forEach((c, i) => c.replaceChildren(...saved[i]));
  return {title: document.title, text, links, fields};
}"""


HTML_SIZE_JS = "() => new Blob([document.documentElement ? document.documentElement.outerHTML : '']).size"


@dataclass
class RobotsRules:
    """A site's robots.txt rules for our user agent (allow everything when there is none)."""

    parser: RobotFileParser | None = None

    def allows(self, url: str) -> bool:
        return self.parser is None or self.parser.can_fetch(USER_AGENT, url)


def load_robots(start_url: str, settings: Settings) -> RobotsRules:
    """robots.txt of the start URL's site, fetched through the URL guard; missing or unreadable: no rules."""
    parts = urlsplit(start_url)
    robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
    try:
        fetched = fetch_url(robots_url, settings, {"text/plain": "text"})
    except IngestError:  # 404, no answer, not text: nothing is disallowed
        return RobotsRules()
    parser = RobotFileParser(robots_url)
    parser.parse(fetched.data.decode("utf-8", "replace").splitlines())
    return RobotsRules(parser)


@dataclass
class Refusal:
    """A request the session refused, and why."""

    url: str
    reason: str


@dataclass
class BrowserSession:
    """One headless Chromium with one page, confined to the start URL's site (see the module doc).
    Use as a context manager; every Playwright call runs on the session's own thread."""

    start_url: str
    settings: Settings
    limits: BrowserLimits
    robots: RobotsRules = field(default_factory=RobotsRules)
    refused: list[Refusal] = field(default_factory=list)
    page_loads: int = 0
    view: PageView | None = None
    _thread: ThreadPoolExecutor | None = None
    _started: float = 0.0
    _last_load: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pw: Any = None
    _pinned: IPAddress | None = None
    _browser: Any = None
    _page: Any = None
    _stopped: str | None = None
    _redirected_to: str | None = None

    def __enter__(self) -> BrowserSession:
        # A refused start fails before any browser; the address the guard checked is the one the browser uses.
        self._pinned = check_url(self.start_url, self.limits.allow_private_urls)
        guard_settings = self.settings.with_changes(allow_private_urls=self.limits.allow_private_urls)
        self.robots = load_robots(self.start_url, guard_settings)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")
        try:
            self._on_thread(self._launch, within_s=LAUNCH_WITHIN_S)
        except Exception:
            self.__exit__(None, None, None)
            raise
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        try:
            self._on_thread(self._close)
        finally:
            self._thread.shutdown(wait=self._stopped is None)  # a thread stuck on a stopped browser is left
            self._thread = None

    def _on_thread(self, work: Callable[[], T], within_s: float | None = None) -> T:
        """Run `work` on the browser thread; a browser that does not answer in time (a page's script that
        loops for ever blocks every call) is stopped, and the call fails instead of waiting for ever."""
        if self._thread is None:
            raise TaskCraftError("the browser session is not open", hint="use the session in a with block")
        within_s = within_s or self.answer_within_s()
        try:
            return self._thread.submit(work).result(timeout=within_s)
        except FutureTimeout:
            self._stop_browser(f"the page stopped answering within {within_s:g} s; the browser was stopped")
            raise TaskCraftError(str(self._stopped), hint="a script on the page may run for ever") from None

    def answer_within_s(self) -> float:
        """How long one call may keep the browser thread: its loads and waits at most, and a margin."""
        return 6 * self.limits.page_timeout_s + 3 * SETTLE_S + self.limits.rate_limit_s + ANSWER_MARGIN_S

    def _stop_browser(self, reason: str) -> None:
        """Close the browser from outside its thread, which is waiting on the page. The sync API cannot
        be called from here, so the close is scheduled on that thread's event loop (it runs while the
        thread waits); the waiting call then fails at once."""
        self._stopped = reason
        if self._browser is not None:
            asyncio.run_coroutine_threadsafe(self._browser._impl_obj.close(reason=reason), self._browser._loop)

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(**launch_options(self.settings, self.start_url, self._pinned))
        except Exception as error:
            self._pw.stop()
            raise TaskCraftError(f"could not start the browser ({str(error).splitlines()[0]})",
                                 hint="install chromium, or set browser_executable (TASKCRAFT_BROWSER) to a "
                                      "Chromium or Chrome executable") from None
        context = self._browser.new_context(viewport=VIEWPORT, device_scale_factor=SCREENSHOT_SCALE,
                                            user_agent=f"Mozilla/5.0 (X11; Linux x86_64) {USER_AGENT}",
                                            service_workers="block", accept_downloads=False)
        context.route("**/*", self._route)
        context.route_web_socket(re.compile(".*"), self._route_web_socket)
        self._page = context.new_page()

    def _close(self) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._pw is not None:
                self._pw.stop()

    # ---- the rules every request meets -----------------------------------------------------

    def refusal(self, url: str, navigation: bool) -> str | None:
        """Why a request may not be made (None: it may)."""
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            return None
        try:
            site = site_of(url)  # a port that is no port fails here, whatever the rules
            if self.limits.same_site and site != site_of(self.start_url):
                return f"{parts.netloc or url} is another site (same-site rule)"
            check_url(url, self.limits.allow_private_urls)
        except ValueError as error:  # e.g. a port above 65535
            return f"not a valid URL ({error})"
        except (UnsafeURLError, IngestError) as error:
            return error.message
        if navigation and not self.robots.allows(url):
            return "robots.txt disallows it"
        return None

    def _route(self, route: Any, request: Any) -> None:
        """Every request meets the rules, and so does every hop of a redirect: Chromium routes neither the
        hops nor the Location of a redirect handed back to it, so redirects are not followed by Chromium.
        The page's own navigation is stopped at a redirect and `_navigate` opens its Location as a new
        navigation (the page's URL stays right); a resource's redirect is followed here, hop by hop."""
        from playwright.sync_api import Error as PlaywrightError

        reason = self._request_refusal(request)
        if reason is not None:
            self._refuse(route, request.url, reason)
            return
        url, navigation = request.url, request.is_navigation_request()
        try:
            for _hop in range(MAX_REDIRECTS):
                response = route.fetch(url=url, max_redirects=0, timeout=self.limits.page_timeout_s * 1000)
                target = redirect_target(url, response)
                if target is None:
                    route.fulfill(response=response)
                    return
                if reason := self.refusal(target, navigation):
                    self._refuse(route, target, reason)
                    return
                if navigation and request.frame == self._page.main_frame:
                    self._redirected_to = target
                    route.abort("aborted")
                    return
                url = target
            self._refuse(route, url, f"more than {MAX_REDIRECTS} redirects")
        except PlaywrightError:  # no answer in time, connection refused: the request fails as it would
            route.abort("failed")

    def _request_refusal(self, request: Any) -> str | None:
        """Why the browser may not make this request: the URL rules; and navigations only by GET (a form's
        POST could log in, comment or change the site's data)."""
        if request.is_navigation_request() and request.method != "GET":
            return f"only GET navigations (this one is a {request.method})"
        return self.refusal(request.url, request.is_navigation_request())

    def _route_web_socket(self, socket: Any) -> None:
        """A WebSocket meets the URL rules too (Chromium does not route it as a request)."""
        reason = self.refusal(http_equivalent(socket.url), navigation=False)
        if reason is None:
            socket.connect_to_server()
            return
        self._record_refusal(socket.url, reason)
        socket.close(code=1008, reason="refused")

    def _refuse(self, route: Any, url: str, reason: str) -> None:
        self._record_refusal(url, reason)
        route.abort("blockedbyclient")

    def _record_refusal(self, url: str, reason: str) -> None:
        with self._lock:
            self.refused.append(Refusal(url, reason))

    # ---- budget and pace --------------------------------------------------------------------

    def elapsed_s(self) -> float:
        return time.monotonic() - self._started if self._started else 0.0

    def restart_budget(self) -> None:
        """A fresh budget of pages and seconds (each executor run has its own)."""
        self.page_loads, self._started = 0, time.monotonic()

    def budget_left(self) -> str | None:
        """None while pages and seconds remain; else what is spent (or why the browser was stopped)."""
        if self._stopped:
            return self._stopped
        if self.page_loads >= self.limits.max_pages:
            return f"the budget of {self.limits.max_pages} page loads is spent"
        if self.elapsed_s() >= self.limits.max_seconds:
            return f"the budget of {self.limits.max_seconds:g} s is spent"
        return None

    def _load(self, navigate: Callable[[Any], Any], quiet_s: float = QUIET_S) -> None:
        """One page load within the budget, the rate limit and the page timeout (on the browser thread)."""
        spent = self.budget_left()
        if spent:
            raise BrowserBudgetSpent(spent, hint="raise --max-pages or explore_max_seconds")
        wait = self._last_load + self.limits.rate_limit_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_load = time.monotonic()
        self.page_loads += 1
        from playwright.sync_api import Error as PlaywrightError

        refused_before = len(self.refused)
        try:
            self._navigate(navigate)
        except PlaywrightError as error:
            raise TaskCraftError(self._load_failure(str(error), self.refused[refused_before:]),
                                 hint="the exploration goes on without it") from None
        self._settle(quiet_s)

    def _navigate(self, navigate: Callable[[Any], Any]) -> None:
        """Run the navigation; a redirect `_route` stopped is opened as a new navigation (which meets the
        rules again), up to MAX_REDIRECTS of them."""
        from playwright.sync_api import Error as PlaywrightError

        step: Callable[[Any], Any] = navigate
        for _hop in range(MAX_REDIRECTS):
            self._redirected_to = None
            try:
                step(self._page)
            except PlaywrightError:
                if self._redirected_to is None:
                    raise
            if self._redirected_to is None:
                return
            step = self._goto(self._redirected_to)
        raise TaskCraftError(f"more than {MAX_REDIRECTS} redirects", hint="the exploration goes on without it")

    def _goto(self, url: str) -> Callable[[Any], Any]:
        timeout = self.limits.page_timeout_s * 1000
        return lambda page: page.goto(url, timeout=timeout, wait_until="domcontentloaded")

    def _load_and_read(self, navigate: Callable[[Any], Any], quiet_s: float = QUIET_S) -> PageView:
        self._load(navigate, quiet_s)
        reason = self.refusal(self._page.url, navigation=True)
        if reason:  # every hop is routed; the page reached is checked all the same
            refused = self._page.url
            self._page.goto("about:blank")
            raise TaskCraftError(f"refused {refused}: {reason}", hint="stay on the start URL's site")
        return self._read()

    def _load_failure(self, error: str, refused: list[Refusal]) -> str:
        """Why a load failed, in words: a request this load had refused (a redirect hop's shows up as an
        interrupted navigation), a timeout, or Playwright's first line."""
        first = error.splitlines()[0] if error else "unknown error"
        if refused and ("ERR_BLOCKED_BY_CLIENT" in first or "interrupted by another navigation" in first):
            return f"refused {refused[-1].url}: {refused[-1].reason}"
        if "Timeout" in first:
            return f"the page did not load within {self.limits.page_timeout_s:g} s"
        if "ERR_BLOCKED_BY_CLIENT" in first:
            return "the request was refused"
        return f"the page could not be loaded ({first})"

    def _settle(self, quiet_s: float) -> None:
        """Wait for the load event and for the page's DOM to stop changing (scripts filling it)."""
        for _attempt in range(3):
            try:
                self._page.wait_for_load_state("load", timeout=self.limits.page_timeout_s * 1000)
                self._page.evaluate(QUIET_JS, [int(quiet_s * 1000), int(SETTLE_S * 1000)])
                return
            except Exception:  # noqa: BLE001 (the document was replaced meanwhile, or an image is slow: again)
                time.sleep(quiet_s)

    def _ask(self, call: Callable[[], T]) -> T:
        """What the page answers; a page that replaces its document meanwhile is given time and asked again,
        then fails with a TaskCraftError (not Playwright's own error, which would end the run)."""
        from playwright.sync_api import Error as PlaywrightError

        for attempt in range(READ_ATTEMPTS):
            try:
                return call()
            except PlaywrightError as error:
                if attempt + 1 == READ_ATTEMPTS or self._stopped:
                    raise TaskCraftError(f"the page could not be read ({str(error).splitlines()[0]})",
                                         hint="the page changed while it was read; try again") from None
                self._settle(QUIET_S)
        raise AssertionError("unreachable")

    def _read(self) -> PageView:
        raw = self._ask(lambda: self._page.evaluate(READ_PAGE_JS, PAGE_TEXT_CHARS))
        links: list[LinkSeen] = []
        seen: set[str] = set()
        for link in raw["links"]:
            url = urldefrag(link["href"]).url
            if url in seen or url == urldefrag(self._page.url).url or self.refusal(url, navigation=True):
                continue
            seen.add(url)
            links.append(LinkSeen(number=len(links) + 1, text=link["text"][:80], url=url, in_main=link["inMain"]))
            if len(links) == MAX_LINKS:
                break
        fields = [FieldSeen(number=n, kind="select" if f["tag"] == "select" else "search" if f["search"] else "text",
                            name=f["name"], label=f["label"][:60], form_action=f["action"], options=f["options"][:20])
                  for n, f in enumerate(raw["fields"], start=1)]
        text = "\n".join(line.strip() for line in raw["text"].splitlines() if line.strip())
        self.view = PageView(url=self._page.url, title=raw["title"].strip(), text=text, links=links, fields=fields,
                             fingerprint=fingerprint(text))
        return self.view

    # ---- actions (each returns the page reached) ------------------------------------------------

    def open_url(self, url: str) -> PageView:
        reason = self.refusal(url, navigation=True)
        if reason:
            raise TaskCraftError(f"refused {url}: {reason}", hint="stay on the start URL's site")
        return self._on_thread(lambda: self._load_and_read(self._goto(url)))

    def open_link(self, number: int) -> PageView:
        return self.open_url(self._link(number).url)

    def go_back(self) -> PageView:
        timeout = self.limits.page_timeout_s * 1000

        return self._on_thread(lambda: self._load_and_read(
            lambda p: p.go_back(timeout=timeout, wait_until="domcontentloaded")))

    def read_page(self) -> PageView:
        return self._on_thread(self._read)

    def type_and_submit(self, number: int, text: str) -> PageView:
        found = self._field(number, ("search", "text"))
        timeout = self.limits.page_timeout_s * 1000

        def submit(page: Any) -> None:
            from playwright.sync_api import TimeoutError as PlaywrightTimeout

            box, before = self._control(page, found), page.url
            box.fill(text, timeout=timeout)
            try:
                with page.expect_navigation(timeout=timeout, wait_until="domcontentloaded"):
                    box.press("Enter", timeout=timeout)
            except PlaywrightTimeout:
                if page.url != before:
                    raise
                # no navigation: the form updated the page in place (settling waits for its text)

        return self._on_thread(lambda: self._load_and_read(submit, QUIET_AFTER_FORM_S))

    def select_option(self, number: int, option: str) -> PageView:
        found = self._field(number, ("select",))
        timeout = self.limits.page_timeout_s * 1000
        if option not in found.options:
            raise TaskCraftError(f"the select {found.name!r} has no option {option!r}",
                                 hint="options: " + " | ".join(found.options))

        def choose(page: Any) -> None:
            self._control(page, found).select_option(label=option, timeout=timeout)

        return self._on_thread(lambda: self._load_and_read(choose, QUIET_AFTER_FORM_S))

    def screenshot(self) -> bytes | None:
        """A small JPEG of the current page (None when the page cannot be captured)."""
        def capture() -> bytes | None:
            try:
                return bytes(self._page.screenshot(type="jpeg", quality=SCREENSHOT_QUALITY, scale="device",
                                                   timeout=5000))
            except Exception:  # a screenshot is a nicety: the step is kept without it
                return None

        return self._on_thread(capture)

    def html(self) -> str:
        """The current page's HTML (IngestError when it is larger than url_max_bytes: it is not stored)."""
        limit = self.settings.url_max_bytes

        def content() -> str:
            if self._ask(lambda: self._page.evaluate(HTML_SIZE_JS)) > limit:
                raise IngestError(f"the page is larger than the {human_size(limit)} limit (url_max_bytes)",
                                  hint="raise url_max_bytes to store larger pages")
            return str(self._ask(self._page.content))

        return self._on_thread(content)

    def _link(self, number: int) -> LinkSeen:
        links = self.view.links if self.view else []
        if not 1 <= number <= len(links):
            raise TaskCraftError(f"there is no link [{number}] on this page ({len(links)} links)",
                                 hint="use a number from the page's Links list")
        return links[number - 1]

    def _field(self, number: int, kinds: tuple[str, ...]) -> FieldSeen:
        fields = self.view.fields if self.view else []
        found = next((f for f in fields if f.number == number), None)
        if found is None or found.kind not in kinds:
            raise TaskCraftError(f"there is no {' or '.join(kinds)} field {{{number}}} on this page",
                                 hint="use a number from the page's Fields list")
        return found

    @staticmethod
    def _control(page: Any, found: FieldSeen) -> Any:
        """The control READ_PAGE_JS numbered (it marks each with its number)."""
        return page.locator(f'[data-taskcraft-field="{found.number}"]').first


# ---- the tools ------------------------------------------------------------------------------


class OpenLinkArgs(BaseModel):
    number: int = Field(description="The link's number in the current page's Links list.")


class GoBackArgs(BaseModel):
    pass


class ReadPageArgs(BaseModel):
    part: int = Field(1, description="Which part of the page's text: 1 is the beginning.")


class TypeAndSubmitArgs(BaseModel):
    field: int = Field(description="The text field's number in the page's Fields list.")
    text: str = Field(description="What to type.")


class SelectOptionArgs(BaseModel):
    field: int = Field(description="The select field's number in the page's Fields list.")
    option: str = Field(description="The option's visible text.")


BROWSER_TOOL_ARGS: dict[str, type[BaseModel]] = {
    "open_link": OpenLinkArgs, "go_back": GoBackArgs, "read_page": ReadPageArgs,
    "type_and_submit": TypeAndSubmitArgs, "select_option": SelectOptionArgs}
"""Each browser tool's argument schema: the tools take it, and the checks of a task's tool calls read it."""
BROWSER_TOOLS = tuple(BROWSER_TOOL_ARGS)


def make_browser_tools(session: BrowserSession) -> list[BaseTool]:
    """The five browser tools over one session; each returns a text observation, or an error
    observation (a refused URL, a page that never loaded, a spent budget) the model can react to."""

    def observed(action: Callable[[], PageView], start: int = 0) -> str:
        try:
            return action().observation(start)
        except TaskCraftError as error:
            return f"Error: {error.message}" + (f" ({error.hint})" if error.hint else "")

    def open_link(number: int) -> str:
        """Open the link with this number from the current page's Links list; returns the page reached."""
        return observed(lambda: session.open_link(number))

    def go_back() -> str:
        """Go back to the previous page, like the browser's back button; returns that page."""
        return observed(session.go_back)

    def read_page(part: int = 1) -> str:
        """Read the current page: its title, URL, main text (part 1 is the beginning; ask part 2, 3, ...
        for the rest of a long page), numbered links and form fields."""
        return observed(session.read_page, start=max(0, part - 1) * EXCERPT_CHARS)

    def type_and_submit(field: int, text: str) -> str:
        """Type text into the text field or search box with this number from the page's Fields list and
        submit it (press Enter), e.g. a site search; returns the page that answers."""
        return observed(lambda: session.type_and_submit(field, text))

    def select_option(field: int, option: str) -> str:
        """Choose an option (its visible text) in the select field with this number from the page's
        Fields list, e.g. a filter or a version switch; returns the page after the change."""
        return observed(lambda: session.select_option(field, option))

    return [StructuredTool.from_function(func=f, args_schema=BROWSER_TOOL_ARGS[f.__name__])
            for f in (open_link, go_back, read_page, type_and_submit, select_option)]


URL_LINE = "URL: "
LINK_LINE = re.compile(r"^\[(?P<number>\d+)\] (?P<text>.*) -> (?P<url>\S+)$", re.MULTILINE)
FIELD_LINE = re.compile(r"^\{(?P<number>\d+)\} (?:(?P<kind>search|text) box|select) '(?P<name>[^']*)'", re.MULTILINE)


def observed_url(observation: str) -> str | None:
    """The URL a browser observation shows (None for an error observation)."""
    for line in observation.splitlines()[:3]:
        if line.startswith(URL_LINE):
            return line[len(URL_LINE):].strip()
    return None


def observed_links(observation: str) -> list[LinkSeen]:
    """The numbered links a browser observation lists."""
    return [LinkSeen(number=int(m["number"]), text=m["text"], url=m["url"]) for m in LINK_LINE.finditer(observation)]


def observed_fields(observation: str) -> list[tuple[int, str, str]]:
    """(number, kind, name) of the fields a browser observation lists; kind search, text or select."""
    return [(int(m["number"]), m["kind"] or "select", m["name"]) for m in FIELD_LINE.finditer(observation)]
