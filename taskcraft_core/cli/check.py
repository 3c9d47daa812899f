"""`check [--status S] [--json]`: run the automatic pre-review checks again and store the results."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from taskcraft_core.generate.checks import CHECK_NAMES, recheck_tasks
from taskcraft_core.schema import TASK_STATUSES
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    check = subparsers.add_parser("check", help="Run the pre-review checks on stored tasks (default: all).")
    check.add_argument("--status", choices=[*TASK_STATUSES, "all"], default="all", help="Only tasks with this status.")
    check.add_argument("--json", action="store_true", help='Print {"checked": N, "flagged": {task_id: [checks]}}.')
    check.set_defaults(handler=run_check, searches=False)  # reads tasks only; needs no vector index


def run_check(args: argparse.Namespace, workspace: Workspace) -> int:
    statuses = [] if args.status == "all" else [args.status]
    report = recheck_tasks(workspace.store, TaskFilter(statuses=statuses))
    if args.json:
        print(json.dumps(report.model_dump()))
        return 0
    per_check = Counter(name for names in report.flagged.values() for name in names)
    print(f"checked {report.checked} tasks, {len(report.flagged)} flagged")
    for name in CHECK_NAMES:
        print(f"  {name:<24} {per_check[name]}")
    return 0
