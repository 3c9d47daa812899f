"""The website explorer on a real site nobody here wrote: Debian's python3.11-doc Sphinx manual,
served on 127.0.0.1 by this script (its search page runs in JavaScript), explored with the offline
engine in Debian's chromium.

    python -m bench.bench_explore [--max-pages 30] [--tasks-per-guideline 3] [--examples 2]

Prints: pages per minute of exploring (states reached / minutes until the explorer stopped), steps,
searches and other interactions, seconds per executed task, and per guideline family the candidates
written and the tasks verified (with the verified share), then example tasks of each family.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

from taskcraft_core.runs.site_exploration import ExploreRequest, start_exploration
from taskcraft_core.schema import GUIDELINE_FAMILIES, Task, guideline_of
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.site_server import PYTHON_MANUAL, serve_directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-pages", type=int, default=30)
    parser.add_argument("--tasks-per-guideline", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as home, serve_directory(PYTHON_MANUAL) as (url, _server):
        workspace = Workspace.open(Settings(home=Path(home), allow_private_urls=True))
        started = time.perf_counter()
        summary = start_exploration(workspace, ExploreRequest(
            start_url=f"{url}/library/index.html", max_pages=args.max_pages, engine="offline",
            tasks_per_guideline=args.tasks_per_guideline))
        total_s = time.perf_counter() - started
        steps = workspace.store.exploration_steps(summary.run_id, screenshots=False)
        explore_s = (steps[-1].created_at - steps[0].created_at).total_seconds() if len(steps) > 1 else 0.0
        tasks = workspace.store.get_tasks(workspace.store.list_task_ids(TaskFilter(run_ids=[summary.run_id])))
    report(summary.pages_visited, steps, explore_s, total_s, tasks, args.examples, summary.stopped)


def report(pages: int, steps: list, explore_s: float, total_s: float, tasks: list[Task], examples: int,
           stopped: str) -> None:
    actions = Counter(step.action for step in steps if not step.error)
    print(f"explored {pages} pages in {len(steps)} steps ({explore_s:.1f} s): "
          f"{60 * pages / explore_s if explore_s else 0:.1f} pages per minute; stopped: {stopped}")
    print("actions: " + ", ".join(f"{name} {count}" for name, count in actions.most_common())
          + f"; failed steps: {sum(1 for s in steps if s.error)}")
    tasks_s = total_s - explore_s
    print(f"tasks: {len(tasks)} candidates written, executed and verified in {tasks_s:.1f} s "
          f"({tasks_s / len(tasks) if tasks else 0:.1f} s per task); whole run {total_s:.1f} s")
    print(f"{'family':<24}{'candidates':>11}{'verified':>10}{'share':>8}")
    for family in GUIDELINE_FAMILIES:
        written = [t for t in tasks if guideline_of(t) == family]
        verified = [t for t in written if t.status == "pending"]
        share = f"{len(verified) / len(written):.0%}" if written else "-"
        print(f"{family:<24}{len(written):>11}{len(verified):>10}{share:>8}")
    verified_all = [t for t in tasks if t.status == "pending"]
    print(f"{'all':<24}{len(tasks):>11}{len(verified_all):>10}"
          f"{(f'{len(verified_all) / len(tasks):.0%}' if tasks else '-'):>8}")
    for family in GUIDELINE_FAMILIES:
        for task in [t for t in tasks if guideline_of(t) == family][:examples]:
            outcome = "verified" if task.status == "pending" else f"rejected: {task.failure_reason}"
            print(f"\n[{family}] {task.question}\n  -> {task.golden_answer} ({outcome})")


if __name__ == "__main__":
    main()
