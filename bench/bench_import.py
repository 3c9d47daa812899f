"""Export 36,000 tasks as JSONL, then import them into a fresh store: seconds for each.

Accepted and rejected tasks carry a person's decision, so the import also appends reviews.

    python -m bench.bench_import [--n 36000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.make_tasks import make_tasks
from taskcraft_core.curate.export import export_tasks
from taskcraft_core.curate.importers import import_tasks
from taskcraft_core.schema import Review, Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

BATCH = 1000
DECISIONS = {"accepted": "accept", "rejected": "reject"}


def decision_of(task: Task) -> Review | None:
    """The review behind an accepted or rejected generated task."""
    if task.status not in DECISIONS:
        return None
    return Review(task_id=task.id, reviewer="bench", decision=DECISIONS[task.status], reason="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=36_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_import_") as root:  # removed however the run ends
        measure(Path(root), args.n)


def measure(root: Path, n: int) -> None:
    source = Workspace.open(Settings(home=root / "source"))
    tasks, _ = make_tasks(n)
    for start in range(0, len(tasks), BATCH):
        batch = tasks[start : start + BATCH]
        source.store.add_tasks(batch, [review for task in batch if (review := decision_of(task))])
    out = root / "export" / "tasks.jsonl"

    for fmt, path in (
        ("jsonl", out),
        ("parquet", root / "p" / "tasks.parquet"),
        ("openai_chat", root / "o" / "chat.jsonl"),
    ):
        started = time.perf_counter()
        manifest = export_tasks(source, fmt, TaskFilter(), path)
        size = sum(f["bytes"] for f in manifest.files) / 1e6
        print(f"export {fmt:<12} {manifest.count} tasks, {size:.0f} MB: {time.perf_counter() - started:.1f} s")

    for index in (False, True):
        fresh = Workspace.open(Settings(home=root / f"fresh_{index}"))
        started = time.perf_counter()
        report = import_tasks(fresh, out, "jsonl", index=index)
        label = "with task index (embed + Chroma)" if index else "database only"
        print(f"import jsonl, {label}: {report.added} added, {len(report.errors)} errors: "
              f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
