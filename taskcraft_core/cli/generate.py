"""`generate [...] [--json] [--no-wait]`, `generate --resume RUN_ID`, `cancel RUN_ID` and `runs`.

With `TASKCRAFT_WORKERS=queue` the run executes on the queue workers: `generate` enqueues it and
follows it until it ends (or, with `--no-wait`, prints `{"run_id"}` at once).

A progress bar goes to stderr; stdout carries the result (one JSON object with `--json`).
Exit code: 0 run completed without unit errors, 2 completed with some units failed, cancelled, or
ended early after making candidates (the summary is printed all the same), 1 misuse or a run that
failed before making anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from taskcraft_core.runs.executor import STAGES
from taskcraft_core.runs.service import (
    RunProgress,
    RunRequest,
    RunSummary,
    cancel_run,
    create_run,
    execute_run,
    interrupted_runs,
    resume_run_in_background,
    run_progress,
    run_summary,
    wait_for_run,
)
from taskcraft_core.schema import GenerationRun
from taskcraft_core.workspace import Workspace

BAR_WIDTH = 30
REQUEST_OPTIONS = ("kinds", "documents", "limit", "engine", "model", "base_url", "concurrency")


def register(subparsers: Any) -> None:
    generate = subparsers.add_parser("generate", help="Generate tasks from the stored documents (a run).")
    generate.add_argument("--kinds", help=f"Comma-separated task kinds (default {','.join(STAGES)}).")
    generate.add_argument("--documents", nargs="+", metavar="ID", help="Only these documents (default all).")
    generate.add_argument("--limit", type=int, help="Stop each stage once it made N verified tasks (a unit's tasks "
                          "are kept whole; explore writes ceil(N/4) candidates per guideline family).")
    generate.add_argument("--engine", choices=["offline", "openai"], help="Default: openai when configured.")
    generate.add_argument("--model", help="Chat model name (default from settings).")
    generate.add_argument("--base-url", help="OpenAI-compatible endpoint base URL.")
    generate.add_argument("--concurrency", type=int, help="Work units executed at once (default 8).")
    generate.add_argument("--resume", metavar="RUN_ID", help="Continue an interrupted or cancelled run.")
    generate.add_argument("--json", action="store_true", help="Print one JSON object with the run's yield.")
    generate.add_argument("--no-wait", action="store_true", help="With queue workers: enqueue the run, print "
                          '{"run_id": ...} and return at once.')
    generate.set_defaults(handler=run_generate)
    cancel = subparsers.add_parser("cancel", help="Cancel a generation run (it can be resumed later).")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.set_defaults(handler=run_cancel)
    runs = subparsers.add_parser("runs", help="List generation runs (newest first).")
    runs.add_argument("--limit", type=int, default=20, help="How many runs to list.")
    runs.add_argument("--json", action="store_true", help="Print a JSON list of run summaries.")
    runs.set_defaults(handler=run_list, reads_only=True, searches=False)


def run_generate(args: argparse.Namespace, workspace: Workspace) -> int:
    if args.resume:
        given = [name for name in REQUEST_OPTIONS if getattr(args, name) is not None]
        if given:
            print(f"error: --resume continues a run as it was configured; drop {', '.join(given)}", file=sys.stderr)
            return 1
        run_id = args.resume
        stored = workspace.store.get_run(run_id)
        if stored is not None and stored.config.engine == "openai":  # a resume uses the resumer's endpoint
            print(f"resuming with your endpoint and key: {workspace.settings.endpoint}", file=sys.stderr)
    else:
        run_id = create_run(workspace, _request(args)).id
    on_queue = workspace.settings.workers == "queue"
    if args.no_wait and not on_queue:
        print("error: --no-wait needs queue workers (TASKCRAFT_WORKERS=queue); inline runs live in this process",
              file=sys.stderr)
        return 1
    if on_queue:
        resume_run_in_background(workspace, run_id)  # enqueues it for the workers
        if args.no_wait:
            print(json.dumps({"run_id": run_id}))
            return 0
    print(f"run {run_id} (resume with: generate --resume {run_id})", file=sys.stderr, flush=True)
    try:
        if on_queue:
            run = wait_for_run(workspace, run_id, ProgressBar(sys.stderr))
        else:
            run = execute_run(workspace, run_id, ProgressBar(sys.stderr))
    except KeyboardInterrupt:
        if on_queue:
            print(f"\nstopped following; the run goes on in the workers (cancel {run_id} stops it)", file=sys.stderr)
        else:
            print(f"\ninterrupted; resume with: generate --resume {run_id}", file=sys.stderr)
        return 1
    except Exception:
        # A bug ended the run: it surfaces, but the summary of what the run stored comes first.
        _report(workspace.store.get_run(run_id), args.json)
        raise
    summary = _report(run, args.json)
    if run.status == "failed":
        print(f"error: {run.error}", file=sys.stderr)
        # A run that ended early after making candidates still has a yield: exit 2, like unit errors.
        return 2 if summary is not None and summary.candidates else 1
    return 2 if summary is not None and (summary.errors or run.status == "cancelled") else 0


def _report(run: GenerationRun | None, as_json: bool) -> RunSummary | None:
    if run is None:
        return None
    summary = run_summary(run)
    if as_json:
        print(summary.model_dump_json(), flush=True)
    else:
        _print_summary(run, summary)
    return summary


def _request(args: argparse.Namespace) -> RunRequest:
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()] if args.kinds else list(STAGES)
    return RunRequest(kinds=kinds, document_ids=args.documents or [], limit=args.limit, engine=args.engine,
                      model=args.model, base_url=args.base_url, concurrency=args.concurrency)


class ProgressBar:
    """A text progress bar: stage, units done/total, funnel so far. On a terminal it is redrawn in
    place; into a file or pipe it writes a line per stage and per tenth of a stage (logs stay short)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.in_place = stream.isatty()
        self.last_line: tuple[str, int] | None = None

    def __call__(self, progress: RunProgress) -> None:
        filled = BAR_WIDTH * progress.done // progress.total if progress.total else BAR_WIDTH
        step = (progress.stage, 10 * progress.done // progress.total if progress.total else 10)
        if not self.in_place and step == self.last_line:
            return
        self.last_line = step
        counts = progress.counts
        accepted = sum(n for key, n in counts.items() if key.endswith("_accepted"))
        rejected = sum(n for key, n in counts.items() if key.endswith("_rejected"))
        line = (f"{progress.stage:<7} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{progress.done}/{progress.total} units  {accepted} verified, {rejected} rejected")
        self.stream.write(f"\r{line}" if self.in_place else f"{line}\n")
        self.stream.flush()


def _print_summary(run: GenerationRun, summary: RunSummary) -> None:
    print(f"run {run.id} {run.status}: {summary.candidates} candidates stored, {summary.accepted} verified, "
          f"{summary.rejected} rejected, {summary.already_present} already present; "
          f"{run.model_calls} model calls, {run.tokens} tokens")
    for kind, counts in summary.by_kind.items():
        print(f"  {kind:<7} {counts.candidates} candidates, {counts.accepted} verified, "
              f"{counts.rejected} rejected, {counts.duplicates} near-duplicates, {counts.present} already present")
    calls = summary.calls
    if calls["by_step"]:
        steps = ", ".join(f"{step} {n}" for step, n in calls["per_candidate_by_step"].items())
        print(f"  model calls per candidate {calls['per_candidate']}, per verified task {calls['per_verified']}; "
              f"by step per candidate: {steps}")
    for error in summary.errors:
        print(f"  failed unit {error.unit}: {error.error}")
    for empty in summary.empty_units:
        print(f"  nothing from {empty.unit}: {empty.reason}")


def run_cancel(args: argparse.Namespace, workspace: Workspace) -> int:
    cancel_run(workspace, args.run_id)
    print(f"run {args.run_id} cancelled (resume with: generate --resume {args.run_id})", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace, workspace: Workspace) -> int:
    if not workspace.read_only:
        interrupted_runs(workspace)  # marks runs of dead processes, so their status reads true
    runs = workspace.store.list_runs(limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    run_summary(run).model_dump() | {"status": run.status, "started_at": run.started_at.isoformat()}
                    for run in runs
                ]
            )
        )
        return 0
    for run in runs:
        progress, summary = run_progress(run), run_summary(run)
        print(f"{run.id}  {run.status:<11} {run.started_at:%Y-%m-%d %H:%M}  {run.config.engine:<7} "
              f"{','.join(run.config.request.kinds)}  "
              f"{progress.stage} {progress.done}/{progress.total}  "
              f"{summary.accepted}/{summary.candidates} verified  {run.model_calls} calls")
    if not runs:
        print("no runs yet")
    return 0
