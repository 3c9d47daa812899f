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
    manifest = export_tasks(workspace, args.format, task_filter, args.out, drop_duplicates=args.drop_duplicates)
    if args.json:
        print(manifest.model_dump_json())
    else:
        dropped = f", {manifest.dropped_duplicates} duplicates left out" if args.drop_duplicates else ""
        print(f"exported {manifest.count} tasks as {manifest.format} to {args.out}{dropped}")
    return 0


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
