"""`dedup [--threshold T] [--status S] [--json]`: print the near-duplicate clusters."""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskcraft_core.dedup import DEFAULT_SCOPE, find_near_duplicates
from taskcraft_core.schema import TASK_STATUSES
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    dedup = subparsers.add_parser("dedup", help="Find clusters of near-duplicate tasks.")
    dedup.add_argument("--threshold", type=float, default=None,
                       help="Cosine similarity from which tasks are near-duplicates (default: settings).")
    dedup.add_argument("--status", action="append", choices=[*TASK_STATUSES, "all"],
                       help=f"Tasks to compare (repeatable; default: {', '.join(DEFAULT_SCOPE)}).")
    dedup.add_argument("--json", action="store_true", help='Print {"tasks", "pairs", "clusters"} as JSON.')
    dedup.set_defaults(handler=run_dedup)


def run_dedup(args: argparse.Namespace, workspace: Workspace) -> int:
    statuses = args.status or list(DEFAULT_SCOPE)
    task_filter = TaskFilter(statuses=[] if "all" in statuses else statuses)
    clusters = find_near_duplicates(workspace, args.threshold, task_filter)
    pairs = sum(len(cluster.pairs) for cluster in clusters)
    if args.json:
        print(json.dumps({"tasks": workspace.store.count_tasks(task_filter), "pairs": pairs,
                          "clusters": [cluster.task_ids for cluster in clusters]}))
        return 0
    print(f"{len(clusters)} clusters, {pairs} pairs")
    for cluster in clusters:
        print(f"- {len(cluster.task_ids)} tasks, max similarity {cluster.max_similarity:.3f}: {' '.join(cluster.task_ids)}")
        for pair in cluster.pairs:
            print(f"    {pair.a} ~ {pair.b}  {pair.kind}  cosine {pair.cosine:.3f}  lexical {pair.lexical:.2f}")
    return 0
