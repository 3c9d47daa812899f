"""`regenerate` and `replay`: a new candidate from a rejection, and re-checking tasks on the current corpus."""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskcraft_core.curate.replay import replay_tasks
from taskcraft_core.generate.regenerate import regenerate
from taskcraft_core.schema import TASK_STATUSES
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    again = subparsers.add_parser("regenerate", help="Make a new candidate from a rejected task's evidence.")
    again.add_argument("task_id")
    again.add_argument("--reason", help="Feedback for the question writer (default: the rejection's reason).")
    again.add_argument("--json", action="store_true", help='Print {"task_id", "status", "parent"} as JSON.')
    again.set_defaults(handler=run_regenerate)

    replay = subparsers.add_parser("replay", help="Re-run the solving agent on tasks; flag those that changed.")
    replay.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="Tasks to replay (default: by --status).")
    replay.add_argument("--status", action="append", choices=TASK_STATUSES,
                        help="Replay every task with this status (repeatable; default: accepted).")
    replay.add_argument("--json", action="store_true", help='Print {"replayed", "still_holds", "changed"} as JSON.')
    replay.set_defaults(handler=run_replay)


def run_regenerate(args: argparse.Namespace, workspace: Workspace) -> int:
    task = regenerate(workspace, args.task_id, args.reason)
    if args.json:
        print(json.dumps({"task_id": task.id, "status": task.status, "parent": task.regenerated_from}))
    else:
        why = f" ({task.failure_reason})" if task.failure_reason else ""
        print(f"task {task.id}: {task.status}{why}, regenerated from {task.regenerated_from}\n  {task.question}")
    return 0


def run_replay(args: argparse.Namespace, workspace: Workspace) -> int:
    if args.task_ids and args.status:
        print("error: give task ids or --status, not both", flush=True)
        return 1
    summary = replay_tasks(workspace, args.task_ids, args.status or ["accepted"])
    if args.json:
        print(json.dumps(summary.model_dump(exclude={"errors"} if not summary.errors else set())))
    else:
        print(f"replayed {summary.replayed}: {summary.still_holds} still hold, {len(summary.changed)} changed "
              f"(now stale){': ' + ' '.join(summary.changed) if summary.changed else ''}")
    for error in summary.errors:
        print(f"  could not replay {error}")
    return 2 if summary.errors else 0
