"""`dedup [--threshold T] [--status S] [--json]`: print the near-duplicate clusters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from taskcraft_core.curate.dedup import DEFAULT_SCOPE, DuplicateCluster, find_near_duplicates
from taskcraft_core.schema import TASK_STATUSES
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    dedup = subparsers.add_parser("dedup", help="Find clusters of near-duplicate tasks.")
    dedup.add_argument("--threshold", type=float, default=None,
                       help="Cosine similarity from which tasks are near-duplicates (default: settings).")
    dedup.add_argument("--status", action="append", choices=[*TASK_STATUSES, "all"],
                       help=f"Tasks to compare (repeatable; default: {', '.join(DEFAULT_SCOPE)}).")
    dedup.add_argument("--json", action="store_true",
                       help='Print {"tasks", "pairs", "clusters", "labelled_pairs"} as JSON.')
    dedup.set_defaults(handler=run_dedup)


def run_dedup(args: argparse.Namespace, workspace: Workspace) -> int:
    statuses = args.status or list(DEFAULT_SCOPE)
    task_filter = TaskFilter(statuses=[] if "all" in statuses else statuses)
    clusters = find_near_duplicates(workspace, args.threshold, task_filter)
    pairs = sum(len(cluster.pairs) for cluster in clusters)
    if args.json:
        summary = {"tasks": workspace.store.count_tasks(task_filter), "pairs": pairs,
                   "clusters": [cluster.task_ids for cluster in clusters],
                   "labelled_pairs": [pair.model_dump(include={"a", "b", "kind", "structural", "cosine"})
                                      for cluster in clusters for pair in cluster.pairs]}
        write_lines([json.dumps(summary)])
    else:
        write_lines(report_lines(clusters, pairs))
    return 0


def report_lines(clusters: Sequence[DuplicateCluster], pairs: int) -> Iterator[str]:
    yield f"{len(clusters)} clusters, {pairs} pairs"
    for cluster in clusters:
        members = " ".join(cluster.task_ids)
        yield f"- {len(cluster.task_ids)} tasks, max similarity {cluster.max_similarity:.3f}: {members}"
        for pair in cluster.pairs:
            yield f"    {pair.a} ~ {pair.b}  {pair.kind}  cosine {pair.cosine:.3f}  lexical {pair.lexical:.2f}"


def write_lines(lines: Iterable[str]) -> None:
    """Print lines; a reader that stops early (`| head`) ends the output quietly, as with any Unix tool."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; pointing it at /dev/null keeps that flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
