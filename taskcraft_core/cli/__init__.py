"""`python -m taskcraft_core COMMAND ...`: headless access to everything the studio does.

Each module in this package registers its subcommands; a handler returns the exit code
(0 success, 2 some inputs failed, 1 misuse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.workspace import Workspace, settings_from_environment

COMMAND_MODULES: list[str] = ["ingest", "generate", "curate", "dedup", "worker"]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m taskcraft_core", description="TaskCraft Studio, headless.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"taskcraft_core.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 1
    try:
        workspace = Workspace.open(settings_from_environment())
        return int(args.handler(args, workspace))
    except TaskCraftError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
