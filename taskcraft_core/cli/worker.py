"""`worker [--concurrency N]`: execute queued work units of generation runs (`TASKCRAFT_WORKERS=queue`).

Runs until SIGTERM or SIGINT, then finishes the units in flight and exits 0. Any number of workers,
on any machines reaching the database and the Chroma server, share the queue.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from taskcraft_core.runs.queue import STALLED_AFTER_S, conninfo, run_worker
from taskcraft_core.runs.service import method_pipeline
from taskcraft_core.workspace import Workspace


def register(subparsers: Any) -> None:
    worker = subparsers.add_parser("worker", help="Execute queued generation work units (TASKCRAFT_WORKERS=queue).")
    worker.add_argument("--concurrency", type=int, help="Units executed at once (default: settings.concurrency, 8).")
    worker.add_argument("--stalled-after", type=float, default=STALLED_AFTER_S, metavar="SECONDS",
                        help="A worker silent this long is dead and its units go back to the queue (default 30).")
    worker.set_defaults(handler=run_worker_command)


def run_worker_command(args: argparse.Namespace, workspace: Workspace) -> int:
    concurrency = workspace.settings.concurrency if args.concurrency is None else args.concurrency
    if not 1 <= concurrency <= 64:
        print(f"error: --concurrency must be between 1 and 64, not {concurrency}", file=sys.stderr)
        return 1
    if args.stalled_after <= 0:
        print(f"error: --stalled-after must be positive, not {args.stalled_after}", file=sys.stderr)
        return 1
    conninfo(workspace.settings.resolved_database_url)  # refuses anything but PostgreSQL, before starting
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per model request would drown the log
    print(f"worker: {concurrency} units at once; stop with SIGTERM (finishes the units in flight)",
          file=sys.stderr, flush=True)
    run_worker(workspace, method_pipeline, concurrency=concurrency, stalled_after_s=args.stalled_after)
    print("worker: stopped", file=sys.stderr, flush=True)
    return 0
