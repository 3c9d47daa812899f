"""Review page speed at 36,000 tasks: server-side with Streamlit's AppTest, and what a person waits
for in a real browser (Playwright driving Debian's chromium) beside a trivial page in the same run.

    python -m bench.bench_review [--tasks 36000] [--decisions 20] [--rounds 5] [--home DIR] [--app app.py]
                                 [--no-browser] [--no-apptest]

Builds (or reuses) a data home with realistic tasks (questions of 100-200 characters, six-step
trajectories with search and read observations of 1-2 kB, verifications, evidence spans) and their
vectors, as an import with `--index` leaves it (says so when a reused home's index is out of step),
then times: the Review page's first render in a fresh session, and accept-then-next per decision.
In the browser, the first request to a freshly started server is timed once; then "first paint"
runs from the navigation (a fresh tab on the URL, or a click on Review in the sidebar) until the
task's question is visible; the trivial page is timed the same way from a fresh tab. Targets:
first paint <= 1.5 s, accept-then-next < 0.3 s. Prints the numbers and ratios and the load average;
not a pass/fail test. `--app` times another checkout's app.py on the same data.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from taskcraft_core.index.consistency import check_index
from taskcraft_core.index.task_vectors import index_tasks
from taskcraft_core.schema import Chunk, Document, Task, TrajectoryStep, Verification
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

DOCUMENTS = 300
BATCH = 2_000
WORDS = ("observatory harbour expedition instrument survey archive telescope vessel station record founded "
         "measured director committee report season depth bearing latitude current ledger catalogue").split()
STATUS_MIX = (("pending", 0.7), ("failed_verification", 0.15), ("accepted", 0.1), ("rejected", 0.05))
KIND_MIX = (("atomic", 0.6), ("depth", 0.25), ("width", 0.15))


def prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS) if rng.random() < 0.85 else str(rng.randint(1850, 2020))
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


def pick(rng: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in mix], weights=[weight for _, weight in mix])[0]


def make_documents(rng: random.Random) -> list[tuple[Document, list[Chunk]]]:
    made = []
    for d in range(DOCUMENTS):
        text = prose(rng, 8_000)
        chunks = [
            Chunk(
                id=f"doc{d}-c{i}",
                document_id=f"doc{d}",
                position=i,
                text=text[start : start + 2_000],
                start=start,
                end=min(start + 2_000, len(text)),
            )
            for i, start in enumerate(range(0, 8_000, 2_000))
        ]
        made.append(
            (
                Document(
                    id=f"doc{d}",
                    source=f"doc{d}.txt",
                    content_hash=f"hash{d}",
                    title=f"Report {d}",
                    doc_type="text",
                    text=text,
                ),
                chunks,
            )
        )
    return made


def make_task(rng: random.Random, i: int, started: datetime) -> Task:
    kind = pick(rng, KIND_MIX)
    hops = 1 if kind != "depth" else rng.randint(2, 3)
    width = 1 if kind != "width" else rng.randint(2, 3)
    question = prose(rng, rng.randint(100, 200)) + "?"
    answer: str | list[str] = (
        [str(rng.randint(1, 9_999)) for _ in range(width)] if width > 1 else str(rng.randint(1, 9_999)))
    document = rng.randrange(DOCUMENTS)
    chunk = rng.randrange(4)
    span_start = chunk * 2_000 + rng.randint(0, 1_900)
    steps = [
        TrajectoryStep(position=0, type="human", content=question),
        TrajectoryStep(position=1, type="ai", content=prose(rng, 160), tool="search_corpus",
                       args={"query": question[:60], "k": 5}, latency_ms=rng.uniform(200, 900),
                       tokens=rng.randint(80, 300)),
        TrajectoryStep(position=2, type="tool", tool="search_corpus", observation=prose(rng, 1_500),
                       latency_ms=rng.uniform(5, 40)),
        TrajectoryStep(position=3, type="ai", content=prose(rng, 120), tool="read_document",
                       args={"document_id": f"doc{document}", "page": 1}, latency_ms=rng.uniform(200, 900),
                       tokens=rng.randint(80, 300)),
        TrajectoryStep(position=4, type="tool", tool="read_document", observation=prose(rng, 2_000),
                       latency_ms=rng.uniform(5, 40)),
        TrajectoryStep(position=5, type="ai", content=f"The answer is {answer}.", latency_ms=rng.uniform(200, 900),
                       tokens=rng.randint(40, 120)),
    ]
    return Task(
        id=f"bench{i:06d}", kind=kind, question=question, golden_answer=answer,
        content_identifier=f"Report {document}", relation=prose(rng, 40), hops=hops, width=width,
        difficulty=min(10, hops + width + rng.randint(0, 3)), engine="offline", model="offline",
        status=pick(rng, STATUS_MIX), document_id=f"doc{document}", chunk_id=f"doc{document}-c{chunk}",
        span_start=span_start, span_end=span_start + 12, parent_ids=[f"bench{i - 1:06d}"] if hops > 1 and i else [],
        created_at=started + timedelta(seconds=i), trajectory=steps,
        verification=Verification(model_alone_answer="unknown", model_alone_score=0, agent_answer=str(answer),
                                  agent_score=2, judge_rationale=prose(rng, 200), agent_steps=2),
    )


def fill(workspace: Workspace, count: int) -> None:
    """Documents and tasks with their vectors, as ingest and `import --index` write them: the index is
    in step with the database, so the timings are what a user of an up-to-date home waits for."""
    rng = random.Random(7)
    for document, chunks in make_documents(rng):
        workspace.store.add_document(document, chunks)
        workspace.index.add_chunks(document, chunks)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, count, BATCH):
        tasks = [make_task(rng, i, started) for i in range(start, min(count, start + BATCH))]
        workspace.store.add_tasks(tasks)
        index_tasks(workspace, tasks)


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def settle(page: Any) -> None:
    """Wait until Streamlit's script run is over and the browser has drawn it (charts included)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=60_000)
    page.wait_for_timeout(1_000)


def browser_timings(app: Path, home: Path, decisions: int, rounds: int = 5) -> None:
    """First paint of Review (fresh tab and sidebar click) and of the trivial page, and
    accept-then-next, in chromium at 1400x1000."""
    from playwright.sync_api import sync_playwright

    from tests.studio_server import CHROMIUM_ARGS, chromium_path, streamlit_server

    chromium = chromium_path()
    if chromium is None:
        print("browser: chromium not installed (apt-get install chromium); skipped")
        return
    painted = "text=Golden answer"  # the card is up (any version of the page)
    question = ".st-key-review_question"  # the question's own container, to see it change
    with streamlit_server(app, home) as studio, streamlit_server(ROOT / "bench" / "trivial_page.py", home) as trivial, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def paint(url: str, selector: str) -> float:
            began = time.perf_counter()
            page.goto(url)
            page.locator(selector).first.wait_for(timeout=60_000)
            return time.perf_counter() - began

        # The first session of a process imports the studio and opens the data home (index check included).
        cold_trivial, cold_review = paint(trivial, "h1"), paint(f"{studio}/review", painted)
        print(f"browser, first request to a freshly started server: Review {cold_review:.3f} s, "
              f"trivial page {cold_trivial:.3f} s")
        trivial_times, fresh_times, sidebar_times = [], [], []
        for _ in range(rounds):
            trivial_times.append(paint(trivial, "h1"))
            fresh_times.append(paint(f"{studio}/review", painted))
            paint(studio, "h1")
            settle(page)  # a person clicks Review on a Home page that has finished drawing
            began = time.perf_counter()
            page.get_by_role("link", name="Review").click()
            page.locator(painted).first.wait_for(timeout=60_000)
            sidebar_times.append(time.perf_counter() - began)
        yardstick = statistics.median(trivial_times)
        print(f"load average (1, 5, 15 min) after the paints: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
        print(f"browser, trivial page first paint: median {yardstick:.3f} s over {rounds}")
        for label, times in (("Review first paint, fresh tab on /review", fresh_times),
                             ("Review first paint, click in the sidebar", sidebar_times)):
            median = statistics.median(times)
            print(f"browser, {label}: median {median:.3f} s, max {max(times):.3f} s "
                  f"({median / yardstick:.1f}x the trivial page; target <= 1.5 s)")
        if not decisions:
            browser.close()
            return
        name = page.get_by_label("Reviewer name")
        name.fill("bench-browser")
        name.press("Enter")
        page.get_by_role("button", name="Accept").first.wait_for(state="visible")
        page.wait_for_timeout(500)
        steps = []
        for _ in range(decisions):
            before = page.locator(question).first.inner_text()
            began = time.perf_counter()
            page.get_by_role("button", name="Accept").first.click()
            page.wait_for_function(
                "([selector, before]) => { const e = document.querySelector(selector);"
                " return e && e.innerText !== before; }", arg=[question, before], timeout=60_000)
            steps.append(time.perf_counter() - began)
        median = statistics.median(steps)
        print(f"browser, accept-then-next: median {median:.3f} s, max {max(steps):.3f} s over {len(steps)} "
              f"({median / yardstick:.1f}x the trivial page; target < 0.3 s)")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=36_000)
    parser.add_argument("--decisions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="Browser paints of each kind (medians are printed).")
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "taskcraft_bench_review")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="The app to time (another checkout's).")
    parser.add_argument("--no-browser", action="store_true", help="Only the server-side AppTest timings.")
    parser.add_argument("--no-apptest", action="store_true", help="Only the browser timings.")
    args = parser.parse_args()

    if args.app == ROOT / "app.py":  # another checkout may have an older schema: leave its data alone
        workspace = Workspace.open(Settings(home=args.home))
        if workspace.store.count_tasks() != args.tasks:
            print(f"filling {args.home} with {args.tasks:,} tasks and their vectors …", flush=True)
            print(f"  filled in {timed(lambda: fill(workspace, args.tasks)):.1f} s")
        gaps = [f"{check.name} {check.indexed:,} of {check.expected:,}" for check in check_index(workspace)
                if not check.in_step]
        print(f"index: {'; '.join(gaps) + ' (out of step)' if gaps else 'in step with the database'}")
    if not args.no_browser:
        browser_timings(args.app.resolve(), args.home, args.decisions, args.rounds)
    if args.no_apptest:
        return
    os.environ["TASKCRAFT_HOME"] = str(args.home)
    store = Store(Settings(home=args.home).resolved_database_url)

    from streamlit.testing.v1 import AppTest

    app = str(args.app.resolve())
    warm = AppTest.from_file(app, default_timeout=120)
    print(f"process start (imports, database and index opened, Home at {args.tasks:,} tasks): "
          f"{timed(warm.run):.2f} s")

    at = AppTest.from_file(app, default_timeout=60)
    at.switch_page("app_pages/review.py")
    first = timed(at.run)
    assert not at.exception, at.exception
    at.text_input(key="reviewer_name").input("bench").run()
    pending = TaskFilter(statuses=["pending"])
    pending_before = store.count_tasks(pending)
    times = []
    for _ in range(args.decisions):
        times.append(timed(at.button(key="review_accept").click().run))
        assert not at.exception, at.exception
    decided = pending_before - store.count_tasks(pending)
    print(f"Review first render in a new session: {first:.3f} s (target < 1.5 s)")
    print(f"accept-then-next: mean {statistics.mean(times):.3f} s, median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {len(times)} decisions (target < 0.3 s); {decided} tasks left the queue")


if __name__ == "__main__":
    main()
