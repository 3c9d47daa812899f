"""`export`, `import` and `review`: curation from scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from taskcraft_core.access import local_principal
from taskcraft_core.curate.export import export_tasks
from taskcraft_core.curate.formats import EXPORT_FORMATS
from taskcraft_core.curate.importers import READERS, import_tasks
from taskcraft_core.curate.records import task_record
from taskcraft_core.curate.review_queue import may_adjudicate
from taskcraft_core.curate.sampling import DIFFICULTY_LEVELS, SampleRequest, parse_mix
from taskcraft_core.errors import PermissionDenied, ReviewConflict, TaskCraftError
from taskcraft_core.schema import TASK_STATUSES
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="Export tasks (default: accepted) with a manifest.")
    export.add_argument("--format", default="jsonl", choices=list(EXPORT_FORMATS))
    export.add_argument("--status", default="accepted", choices=[*TASK_STATUSES, "all"])
    export.add_argument("--kind", action="append", default=[], help="Only this kind (repeatable).")
    export.add_argument("--out", required=True, type=Path, help="Output file (a folder for hf_dataset).")
    export.add_argument("--drop-duplicates", action="store_true",
                        help="Leave out tasks marked duplicate and all but one of each near-duplicate cluster.")
    export.add_argument("--exclude-stale", action="store_true",
                        help="Leave out tasks a replay found stale (their answer no longer holds).")
    export.add_argument("--sample", type=int, metavar="N", help="Draw N tasks (all there are, if fewer).")
    export.add_argument("--difficulty-mix", metavar="MIX", help="With --sample: level:share pairs, e.g. "
                        "1:0.4,2:0.3,3:0.2,4:0.1 (largest-remainder counts; default: equal shares).")
    export.add_argument("--by", choices=["kind"], help="With --sample: keep the mix within each kind.")
    export.add_argument("--seed", type=int, default=0, help="With --sample: the seed of the draw (default 0).")
    export.add_argument("--exclude-flagged", action="store_true",
                        help="Leave out tasks flagged by any automatic pre-review check (see `check`).")
    export.add_argument("--json", action="store_true", help="Print the manifest as JSON.")
    export.set_defaults(handler=run_export, reads_only=True, searches=False)

    imported = subparsers.add_parser("import", help="Import tasks from our JSONL or the reference TaskCraft output.")
    imported.add_argument("path", type=Path)
    imported.add_argument("--format", default="jsonl", choices=list(READERS))
    imported.add_argument("--json", action="store_true", help="Print {added, skipped, errors} as JSON.")
    imported.add_argument("--keep-decisions", action="store_true",
                          help="Let the records' decisions take effect (default: tasks come in pending, their "
                          "decisions kept as history marked imported).")
    imported.set_defaults(handler=run_import)

    review = subparsers.add_parser(
        "review", help="Accept or reject one task, or (without a decision) show its decisions.",
        description="A decision names the state it was made on: the review it follows (--expect ID; default "
        "none, an undecided task; with reviews_per_task > 1, your own newest review of the task). If the task "
        "changed since, nothing is recorded and the exit code is 2, unless --override.")
    review.add_argument("task_id")
    decision = review.add_mutually_exclusive_group()
    decision.add_argument("--accept", action="store_const", const="accept", dest="decision")
    decision.add_argument("--reject", action="store_const", const="reject", dest="decision")
    review.add_argument("--reviewer", help="Who decides (required with --accept or --reject).")
    review.add_argument("--reason", default="")
    review.add_argument("--expect", type=_review_state, default=None, metavar="REVIEW_ID|none",
                        help="The review this decision was made on (default: none).")
    review.add_argument("--override", action="store_true",
                        help="Record the decision even if the task changed since; it is marked as an override.")
    review.add_argument("--adjudicate", action="store_true",
                        help="Settle a disputed task as an adjudicator (settings: adjudicators).")
    review.add_argument("--json", action="store_true", help="Print the decision (or the decisions) as JSON.")
    review.set_defaults(handler=run_review, searches=False)  # a decision never searches the index


def run_export(args: argparse.Namespace, workspace: Workspace) -> int:
    statuses = [] if args.status == "all" else [args.status]
    task_filter = TaskFilter(statuses=statuses, kinds=args.kind, exclude_flagged=args.exclude_flagged)
    manifest = export_tasks(workspace, args.format, task_filter, args.out, drop_duplicates=args.drop_duplicates,
                            exclude_stale=args.exclude_stale, sample=sample_request(args))
    if args.json:
        print(manifest.model_dump_json())
    else:
        dropped = f", {manifest.dropped_duplicates} duplicates left out" if args.drop_duplicates else ""
        stale = f", {manifest.excluded_stale} stale left out" if args.exclude_stale else ""
        print(f"exported {manifest.count} tasks as {manifest.format} to {args.out}{dropped}{stale}")
        if manifest.sample and manifest.sample.pool_shortfall:
            print(f"only {manifest.sample.drawn} of the {manifest.sample.requested} requested tasks exist: "
                  "exported all of them", file=sys.stderr)
        elif manifest.sample and manifest.sample.shortfall:
            short = ", ".join(f"difficulty {level}: {n} short" for level, n in manifest.sample.shortfall.items())
            print(f"the mix could not be met ({short}); other levels filled in", file=sys.stderr)
    return 0


def sample_request(args: argparse.Namespace) -> SampleRequest | None:
    """The --sample options as a request; the mix and --by need --sample."""
    if args.sample is None:
        if args.difficulty_mix or args.by:
            raise TaskCraftError("--difficulty-mix and --by need --sample N.", "Add --sample N, e.g. --sample 500.")
        return None
    if args.sample <= 0:
        raise TaskCraftError(f"--sample {args.sample}: the sample size must be positive.", "Use e.g. --sample 500.")
    mix = parse_mix(args.difficulty_mix) if args.difficulty_mix else dict.fromkeys(DIFFICULTY_LEVELS, 0.25)
    return SampleRequest(size=args.sample, mix=mix, by=args.by, seed=args.seed)


def run_import(args: argparse.Namespace, workspace: Workspace) -> int:
    report = import_tasks(workspace, args.path, args.format, keep_decisions=args.keep_decisions)
    if args.json:
        print(json.dumps(report.model_dump()))
    else:
        print(f"{report.added} tasks added, {report.skipped} already present, {len(report.errors)} bad lines")
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
    return 2 if report.errors else 0


def _review_state(text: str) -> int | None:
    if text.lower() == "none":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a review id or 'none', got {text!r}")
    return int(text)


def run_review(args: argparse.Namespace, workspace: Workspace) -> int:
    store = workspace.store
    if args.decision is None:
        return _show_reviews(args, workspace)
    if not args.reviewer:
        raise TaskCraftError("A decision needs --reviewer.", "Add --reviewer NAME.")
    if args.adjudicate and not may_adjudicate(workspace.settings, local_principal(args.reviewer)):
        raise PermissionDenied(f"{args.reviewer} may not adjudicate.", "Add the name to the adjudicators setting.")
    try:
        review = store.record_review(
            args.task_id, args.reviewer, args.decision, reason=args.reason, expected_latest=args.expect,
            override=args.override, adjudication=args.adjudicate,
            reviews_per_task=workspace.settings.reviews_per_task)
    except ReviewConflict as conflict:
        now = "none" if conflict.current_review_id is None else conflict.current_review_id
        if args.json:
            print(json.dumps({"task_id": args.task_id, "conflict": conflict.message, "current_review_id":
                              conflict.current_review_id}))
        print(f"conflict: {conflict.message} Look at it with `review {args.task_id}`, then decide with "
              f"--expect {now}, or record it anyway with --override.", file=sys.stderr)
        return 2
    task = store.get_task(args.task_id)
    status = task.status if task else "?"
    if args.json:
        record = task_record(task, store) if task else {}
        print(json.dumps({"task_id": args.task_id, "decision": review.decision, "status": status,
                          "review_id": review.id, "override": review.override,
                          "review": record.get("review"), "reviews": record.get("reviews", [])}))
    else:
        marked = " (override)" if review.override else ""
        print(f"task {args.task_id}: {status} by {review.reviewer}{marked}")
    return 0


def _show_reviews(args: argparse.Namespace, workspace: Workspace) -> int:
    """Every decision on one task and the final one: what a later decision names with --expect."""
    task = workspace.store.get_task(args.task_id)
    if task is None:
        raise TaskCraftError(f"No task with id {args.task_id}.")
    record = task_record(task, workspace.store)
    history = workspace.store.reviews_for(task.id)
    latest = history[-1].id if history else None
    if args.json:
        print(json.dumps({"task_id": task.id, "status": task.status, "latest_review_id": latest,
                          "review": record["review"], "reviews": record["reviews"]}))
        return 0
    print(f"task {task.id}: {task.status}; latest review {latest if latest is not None else 'none'}")
    for review in history:
        flags = "".join(f" [{flag}]" for flag in ("override", "adjudication") if getattr(review, flag))
        print(f"  {review.id} {review.created_at:%Y-%m-%d %H:%M} {review.reviewer}: {review.decision}{flags}"
              + (f" — {review.reason}" if review.reason else ""))
    return 0
