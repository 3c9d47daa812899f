"""`explore START_URL [...] [--json]`, `explore --resume RUN_ID` and `explore-steps RUN_ID --out FILE`.

`explore` drives a headless Chromium over a live website (METHOD §2), then writes, executes and
verifies goal-style tasks per guideline family. Ctrl-C (or `cancel RUN_ID` from elsewhere) stops
the exploration at the next step and keeps what it found (steps, pages); `--resume RUN_ID` goes on.
stdout carries the result (one JSON object with `--json`: run_id, pages_visited, interactions,
candidates, accepted, by_family, ...). Exit code: 0 completed, 2 cancelled, 1 misuse or failure.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskcraft_core.curate.exploration import export_exploration
from taskcraft_core.runs.site_exploration import ExploreRequest, ExploreSummary, resume_exploration, start_exploration
from taskcraft_core.schema import GUIDELINE_FAMILIES
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    explore = subparsers.add_parser("explore", help="Explore a live website in a headless browser and make "
                                    "goal-style tasks from it (AutoPlay).")
    explore.add_argument("start_url", nargs="?", metavar="START_URL", help="Where the exploration starts.")
    explore.add_argument("--max-pages", type=int, help="Most page loads of the explorer (default explore_max_pages).")
    explore.add_argument("--max-seconds", type=float, help="Most seconds of exploring (default explore_max_seconds).")
    explore.add_argument("--same-site", action=argparse.BooleanOptionalAction, default=True,
                         help="Refuse every request to another site (default on; --no-same-site lifts it, the URL "
                              "guard still applies).")
    explore.add_argument("--allow-private-urls", action="store_true", help="Allow loopback and private addresses "
                         "(a site on 127.0.0.1 or your own network).")
    explore.add_argument("--engine", choices=["offline", "openai"], help="Default: openai when configured.")
    explore.add_argument("--guidelines", help=f"Comma-separated families (default {','.join(GUIDELINE_FAMILIES)}).")
    explore.add_argument("--tasks-per-guideline", type=int, default=5, help="Candidates written per family.")
    explore.add_argument("--resume", metavar="RUN_ID", help="Continue a stopped exploration.")
    explore.add_argument("--json", action="store_true", help="Print one JSON object with the run's outcome.")
    explore.set_defaults(handler=run_explore)
    steps = subparsers.add_parser("explore-steps", help="Export a run's exploration steps as JSONL.")
    steps.add_argument("run_id", metavar="RUN_ID")
    steps.add_argument("--out", type=Path, required=True, help="The JSONL file to write.")
    steps.add_argument("--screenshots", type=Path, metavar="DIR", help="Write screenshots as files into DIR (the "
                       "lines name them); default: base64 inside each line.")
    steps.set_defaults(handler=run_export_steps, reads_only=True, searches=False)


def run_explore(args: argparse.Namespace, workspace: Workspace) -> int:
    if bool(args.resume) == bool(args.start_url):
        print("error: give either START_URL or --resume RUN_ID", file=sys.stderr)
        return 1
    cancel = threading.Event()
    with _ctrl_c_cancels(cancel):
        if args.resume:
            summary = resume_exploration(workspace, args.resume, cancel)
        else:
            guidelines = [g.strip() for g in args.guidelines.split(",") if g.strip()] if args.guidelines else None
            request = ExploreRequest(start_url=args.start_url, max_pages=args.max_pages, max_seconds=args.max_seconds,
                                     same_site=args.same_site, allow_private_urls=args.allow_private_urls or None,
                                     engine=args.engine, tasks_per_guideline=args.tasks_per_guideline,
                                     **({"guidelines": guidelines} if guidelines else {}))
            summary = start_exploration(workspace, request, cancel)
    _report(summary, args.json)
    if summary.status == "cancelled":
        print(f"cancelled; what was found is kept. Resume with: explore --resume {summary.run_id}", file=sys.stderr)
        return 2
    return 0


@contextmanager
def _ctrl_c_cancels(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the exploration to stop at the next step (keeping what it found); a
    second one interrupts at once."""
    def first(signum: int, frame: object) -> None:
        print("\nstopping after this step (Ctrl-C again to interrupt at once)", file=sys.stderr, flush=True)
        cancel.set()
        signal.signal(signal.SIGINT, previous)

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous: Callable[..., Any] | int = signal.getsignal(signal.SIGINT) or signal.default_int_handler
    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _report(summary: ExploreSummary, as_json: bool) -> None:
    if as_json:
        print(summary.model_dump_json(), flush=True)
        return
    print(f"run {summary.run_id} ({summary.status}, {summary.engine}): {summary.pages_visited} pages, "
          f"{summary.interactions} interactions, {summary.steps} steps; stopped: {summary.stopped or '-'}")
    print(f"functions found: {', '.join(summary.functions) or 'none'}; requests refused: {summary.refused}")
    print(f"tasks: {summary.candidates} candidates, {summary.accepted} accepted")
    for family, counts in summary.by_family.items():
        print(f"  {family:<24} {counts['accepted']}/{counts['candidates']}")
    for problem in summary.problems:
        print(f"  problem: {problem}")


def run_export_steps(args: argparse.Namespace, workspace: Workspace) -> int:
    written = export_exploration(workspace.store, args.run_id, args.out, args.screenshots)
    where = f"screenshots in {args.screenshots}" if args.screenshots else "screenshots as base64"
    print(f"wrote {written} steps to {args.out} ({where})")
    return 0
