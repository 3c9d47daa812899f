"""Review page speed at 36,000 tasks, measured server-side with Streamlit's AppTest.

    python -m bench.bench_review [--tasks 36000] [--decisions 20] [--home DIR]

Builds (or reuses) a data home with realistic tasks (questions of 100-200 characters, six-step
trajectories with search and read observations of 1-2 kB, verifications, evidence spans), then
times: the Review page's first render in a fresh session, and accept-then-next per decision.
Targets: < 1.5 s first render, < 0.3 s per decision. Prints the numbers; not a pass/fail test.
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

from taskcraft_core.schema import Chunk, Document, Task, TrajectoryStep, Verification
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store, TaskFilter

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


def fill(store: Store, count: int) -> None:
    rng = random.Random(7)
    for document, chunks in make_documents(rng):
        store.add_document(document, chunks)
    started = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, count, BATCH):
        store.add_tasks(make_task(rng, i, started) for i in range(start, min(count, start + BATCH)))


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=36_000)
    parser.add_argument("--decisions", type=int, default=20)
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "taskcraft_bench_review")
    args = parser.parse_args()

    store = Store(Settings(home=args.home).resolved_database_url)
    if store.count_tasks() != args.tasks:
        print(f"filling {args.home} with {args.tasks:,} tasks …", flush=True)
        print(f"  filled in {timed(lambda: fill(store, args.tasks)):.1f} s")
    os.environ["TASKCRAFT_HOME"] = str(args.home)

    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "app.py")
    warm = AppTest.from_file(app, default_timeout=120)
    print(f"process start (imports, database and index opened, Home at {args.tasks:,} tasks): "
          f"{timed(warm.run):.2f} s")

    at = AppTest.from_file(app, default_timeout=60)
    at.switch_page("pages/review.py")
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
