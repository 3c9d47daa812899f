"""The whole flow in a real browser: `streamlit run app.py` driven by Playwright in Debian's chromium.

Upload a document and a near-copy of it -> generate with the offline engine -> keep one task of a
near-duplicate cluster -> accept one task, reject one with a reason -> export JSONL -> the file
holds exactly the accepted task with its trajectory. A screenshot of every page is written to
tests/screenshots/.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskcraft_core.store import Store, TaskFilter
from tests.studio_server import CHROMIUM_ARGS, ROOT, chromium_path, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).parent / "screenshots"
SAMPLE = ROOT / "taskcraft_core" / "ingest" / "sample_corpus" / "rv_storm_petrel.md"
PAGES = ["home", "corpus", "generate", "review", "insights", "duplicates", "export", "settings"]


def _chromium() -> str:
    found = chromium_path()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed; .ci/run installs it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A studio server on a free local port with its own data home."""
    home = tmp_path / "home"
    with streamlit_server(ROOT / "app.py", home) as url:
        yield url, home


def _open(page, url: str, name: str) -> None:  # noqa: ANN001 (playwright's Page)
    page.goto(f"{url}/{'' if name == 'home' else name}")
    page.get_by_role("heading").first.wait_for(timeout=30_000)
    _settle(page)


def _settle(page) -> None:  # noqa: ANN001
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=60_000)


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _count(store: Store, status: str) -> int:
    return store.count_tasks(TaskFilter(statuses=[status]))


def test_upload_generate_decide_export_in_a_real_browser(studio: tuple[str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, home = studio
    SCREENSHOTS.mkdir(exist_ok=True)
    near_copy = tmp_path / "petrel_copy.md"  # short: the uploader shortens long names
    near_copy.write_text(SAMPLE.read_text(encoding="utf-8").replace("small seabird", "little seabird"),
                         encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        _open(page, url, "corpus")
        page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
            [str(SAMPLE), str(near_copy)])
        for upload in (SAMPLE, near_copy):  # the uploader sends files in the background
            expect(page.get_by_text(upload.name, exact=True)).to_be_visible(timeout=30_000)
        _settle(page)
        page.get_by_role("button", name="Ingest files").click()
        store = Store(f"sqlite:///{(home / 'taskcraft.sqlite').resolve()}")
        _until(lambda: len(store.list_documents()) == 2, "both uploads ingested")
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "corpus-after-upload.png"), full_page=True)
        assert sorted(d.source for d in store.list_documents()) == ["petrel_copy.md", "rv_storm_petrel.md"]

        _open(page, url, "generate")
        page.get_by_role("button", name="Start run").click()
        _until(lambda: bool(store.list_runs()) and store.list_runs()[0].status == "completed", "the offline run", 120)
        assert _count(store, "pending") >= 2
        assert {t.engine for t in store.list_tasks(limit=None)} == {"offline"}

        _open(page, url, "duplicates")
        name = page.get_by_label("Reviewer name")
        name.fill("Playwright")
        name.press("Enter")
        _settle(page)
        page.get_by_role("button", name="Find near-duplicates").click()
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "duplicates-clusters.png"), full_page=True)
        page.get_by_role("button", name="Keep this one").first.click()
        _until(lambda: any(r.reason.startswith("duplicate of ") for r in store.all_reviews()), "keep this one")
        kept_out = [r for r in store.all_reviews() if r.reason.startswith("duplicate of ")]
        assert kept_out and all((r.decision, r.reviewer) == ("reject", "Playwright") for r in kept_out)

        _open(page, url, "review")  # a new browser session: the name is asked again
        name = page.get_by_label("Reviewer name")
        name.fill("Playwright")
        name.press("Enter")
        _settle(page)
        expect(page.get_by_role("button", name="Accept")).to_be_enabled(timeout=30_000)
        page.get_by_role("button", name="Accept").click()
        _until(lambda: _count(store, "accepted") == 1, "the accept decision")
        _settle(page)
        page.get_by_label("Reject details").fill("asks for trivia")
        page.get_by_label("Reject details").press("Enter")
        _settle(page)
        page.get_by_role("button", name="Reject").click()
        _until(lambda: _count(store, "rejected") == len(kept_out) + 1, "the reject decision")
        _settle(page)
        accepted = store.list_tasks(TaskFilter(statuses=["accepted"]), limit=None)
        assert len(accepted) == 1
        trivia = [r for r in store.all_reviews() if "asks for trivia" in r.reason]
        assert [(r.decision, r.reviewer) for r in trivia] == [("reject", "Playwright")]

        _open(page, url, "export")
        page.get_by_role("button", name="Write to disk").click()
        expect(page.get_by_text("Wrote 1 tasks").first).to_be_visible(timeout=60_000)
        records = [json.loads(line) for line in (home / "exports" / "tasks-jsonl" / "tasks.jsonl").read_text(
            encoding="utf-8").splitlines()]
        assert [r["id"] for r in records] == [accepted[0].id]
        assert records[0]["status"] == "accepted"
        assert records[0]["trajectory"] and any(step["tool"] == "search_corpus" for step in records[0]["trajectory"])

        page.set_viewport_size({"width": 1400, "height": 2200})  # Streamlit scrolls inside its own container
        for name in PAGES:
            _open(page, url, name)
            page.wait_for_timeout(1500)  # plotly draws after the script run ends
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        browser.close()


def test_review_shows_the_task_above_the_fold_and_a_link_opens_one_task(tmp_path: Path) -> None:
    """At 1400x1000 the question, the golden answer and the decision buttons are visible without
    scrolling; `/review?task=ID` (here the first request to a fresh server) opens that task."""
    from playwright.sync_api import expect, sync_playwright

    from tests.curation_factory import question_tasks

    home = tmp_path / "home"
    Store(f"sqlite:///{(home / 'taskcraft.sqlite').resolve()}").add_tasks(question_tasks())
    SCREENSHOTS.mkdir(exist_ok=True)
    with streamlit_server(ROOT / "app.py", home) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        page.goto(f"{url}/review?task=t7")
        expect(page.locator(".st-key-review_question")).to_contain_text("How deep is Lake Vostrov", timeout=60_000)
        expect(page.get_by_text("Opened directly")).to_be_visible()
        expect(page.get_by_role("button", name="Accept")).to_be_visible()
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "review-link.png"))

        _open(page, url, "review")
        question = page.locator(".st-key-review_question")
        expect(question).to_contain_text("Which architect designed the Kelvingrove Concert Hall")
        filters = page.get_by_text("Filters: status pending · oldest first")
        above_the_fold = [question, page.get_by_text("Golden answer"), filters,
                          page.get_by_role("button", name="Accept"), page.get_by_role("button", name="Reject")]
        for element in above_the_fold:
            box = element.first.bounding_box()
            assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 1000, (element, box)
        expect(page.get_by_label("Status")).to_be_hidden()  # the filter panel starts collapsed
        page.screenshot(path=str(SCREENSHOTS / "review-fold.png"))
        browser.close()
