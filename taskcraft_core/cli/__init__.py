"""`python -m taskcraft_core COMMAND ...`: headless access to everything the studio does.

Each module in this package registers its subcommands; a handler returns the exit code
(0 success, 2 some inputs failed, 1 misuse).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.workspace import Workspace, settings_from_environment

COMMAND_MODULES: list[str] = ["ingest", "generate", "curate", "dedup", "check"]


# Libraries that log every HTTP request (or their own progress) at INFO, between the progress bars.
CHATTY_LOGGERS = ("httpx", "httpx2", "httpcore", "openai", "langchain", "langgraph", "chromadb", "urllib3")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m taskcraft_core", description="TaskCraft Studio, headless.")
    parser.add_argument("--verbose", action="store_true", help="Show the libraries' INFO logs (HTTP requests, ...).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"taskcraft_core.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    # --verbose may also follow the command (`generate --verbose`); it is the parser's either way.
    if "--verbose" in arguments[1:]:
        arguments = ["--verbose", *[a for a in arguments if a != "--verbose"]]
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 1
    quiet_libraries(args.verbose)
    try:
        workspace = Workspace.open(settings_from_environment())
        return int(args.handler(args, workspace))
    except TaskCraftError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def quiet_libraries(verbose: bool) -> None:
    """Library logs at WARNING (INFO with --verbose), so progress bars and results stay readable."""
    level = logging.INFO if verbose else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
