"""`ingest PATH_OR_URL... [--json] [--allow-private-urls]` and `reindex`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from taskcraft_core.ingest.pipeline import IngestReport, ingest_locations, reindex
from taskcraft_core.workspace import Workspace

SKIPPED_SHOWN = 5  # a directory can hold thousands of files we do not read; name a few


def register(subparsers: Any) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="Ingest files, directories (recursively), zip archives and http(s) URLs."
    )
    ingest.add_argument("locations", nargs="*", metavar="PATH_OR_URL")
    ingest.add_argument("--json", action="store_true", help="Print one JSON object instead of a summary.")
    ingest.add_argument(
        "--allow-private-urls", action="store_true",
        help="Allow URLs on loopback, private and link-local addresses (your own network).",
    )
    ingest.set_defaults(handler=run_ingest)
    rebuild = subparsers.add_parser("reindex", help="Rebuild the vector index from the database.")
    rebuild.set_defaults(handler=run_reindex, searches=False)


def run_ingest(args: argparse.Namespace, workspace: Workspace) -> int:
    if not args.locations:
        print("error: name at least one file, directory or URL to ingest", file=sys.stderr)
        return 1
    if args.allow_private_urls:
        workspace = dataclasses.replace(workspace, settings=workspace.settings.with_changes(allow_private_urls=True))
    progress = None if args.json else _print_progress
    report = ingest_locations(args.locations, workspace, progress)
    if args.json:
        print(json.dumps(report.model_dump(include={"documents_added", "documents_skipped", "chunks_added", "errors"})))
    else:
        _print_summary(report)
    return 2 if report.errors else 0


def run_reindex(args: argparse.Namespace, workspace: Workspace) -> int:
    chunks = reindex(workspace)
    print(f"reindexed {chunks} chunks and {workspace.store.count_tasks()} tasks")
    return 0


def _print_progress(done: int, total: int, name: str) -> None:
    print(f"[{done}/{total}] {name}", flush=True)


def _print_summary(report: IngestReport) -> None:
    print(
        f"{report.documents_added} documents added ({report.chunks_added} chunks), "
        f"{report.documents_skipped} already present, {len(report.errors)} failed"
    )
    if report.unsupported_skipped:
        shown = ", ".join(report.unsupported_skipped[:SKIPPED_SHOWN])
        more = len(report.unsupported_skipped) - SKIPPED_SHOWN
        print(f"  skipped {len(report.unsupported_skipped)} files of unsupported types: {shown}"
              + (f" and {more} more" if more > 0 else ""))
    for failure in report.errors:
        print(f"  failed: {failure.error}")
