"""`export`, `import` and `review`: curation from scripts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from taskcraft_core.curate.export import export_tasks
from taskcraft_core.curate.formats import EXPORT_FORMATS
from taskcraft_core.curate.importers import READERS, import_tasks
from taskcraft_core.curate.sampling import DIFFICULTY_LEVELS, SampleRequest, parse_mix
from taskcraft_core.errors import TaskCraftError
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
    export.add_argument("--json", action="store_true", help="Print the manifest as JSON.")
    export.set_defaults(handler=run_export, reads_only=True, searches=False)

    imported = subparsers.add_parser("import", help="Import tasks from our JSONL or the reference TaskCraft output.")
    imported.add_argument("path", type=Path)
    imported.add_argument("--format", default="jsonl", choices=list(READERS))
    imported.add_argument("--json", action="store_true", help="Print {added, skipped, errors} as JSON.")
    imported.set_defaults(handler=run_import)

    review = subparsers.add_parser("review", help="Accept or reject one task.")
    review.add_argument("task_id")
    decision = review.add_mutually_exclusive_group(required=True)
    decision.add_argument("--accept", action="store_const", const="accept", dest="decision")
    decision.add_argument("--reject", action="store_const", const="reject", dest="decision")
    review.add_argument("--reviewer", required=True)
    review.add_argument("--reason", default="")
    review.add_argument("--json", action="store_true", help="Print the decision as JSON.")
    review.set_defaults(handler=run_review)


def run_export(args: argparse.Namespace, workspace: Workspace) -> int:
    statuses = [] if args.status == "all" else [args.status]
    task_filter = TaskFilter(statuses=statuses, kinds=args.kind)
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
    report = import_tasks(workspace, args.path, args.format)
    if args.json:
        print(json.dumps(report.model_dump()))
    else:
        print(f"{report.added} tasks added, {report.skipped} already present, {len(report.errors)} bad lines")
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
    return 2 if report.errors else 0


def run_review(args: argparse.Namespace, workspace: Workspace) -> int:
    # A script decides on what it just read, so there is no earlier view to conflict with.
    review = workspace.store.record_review(args.task_id, args.reviewer, args.decision, reason=args.reason,
                                           check_conflict=False)
    task = workspace.store.get_task(args.task_id)
    status = task.status if task else "?"
    if args.json:
        print(json.dumps({"task_id": args.task_id, "decision": review.decision, "status": status,
                          "review_id": review.id}))
    else:
        print(f"task {args.task_id}: {status} by {review.reviewer}")
    return 0
