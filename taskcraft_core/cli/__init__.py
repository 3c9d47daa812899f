"""`python -m taskcraft_core COMMAND ...`: headless access to everything the studio does.

Each module in this package registers its subcommands; a handler returns the exit code
(0 success, 2 some inputs failed, 1 misuse). Exit code 3 means the environment failed (a damaged
database file, a read-only data home, a full disk): one message names the file and what to do.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from taskcraft_core.errors import EnvironmentFailure, TaskCraftError
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace, environment_failure_of, open_workspace, settings_from_environment

COMMAND_MODULES: list[str] = ["ingest", "generate", "curate", "dedup", "lineage", "check", "worker", "explore"]
EXIT_ENVIRONMENT = 3
# Re-indexing fewer entries than this takes a moment and shows no progress.
PROGRESS_FROM = 500
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
    settings = settings_from_environment()
    try:
        return run_command(args, settings)
    except EnvironmentFailure as failure:
        return report_environment_failure(failure)
    except TaskCraftError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        named = environment_failure_of(error, settings)
        if named is None:
            raise
        return report_environment_failure(named)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the command's handler. A command that only reads (`reads_only`) and meets a read-only data
    home runs again on the home opened read-only; the others get the index checked (and rebuilt if
    needed) before they start."""
    try:
        workspace = open_workspace(settings, print_index_progress, print_index_waiting) \
            if getattr(args, "searches", True) else \
            Workspace.open(settings)
        return int(args.handler(args, workspace))
    except Exception as error:
        failure = environment_failure_of(error, settings)
        if not getattr(args, "reads_only", False) or failure is None or failure.kind != "read_only":
            raise
    print(f"note: {failure.path} is read-only; reading it without changing anything", file=sys.stderr)
    return int(args.handler(args, Workspace.open(settings, read_only=True)))


def print_index_progress(what: str, done: int, total: int) -> None:
    if total < PROGRESS_FROM:
        return
    print(f"the vector index did not match the database; re-indexing {what}: {done}/{total}", file=sys.stderr,
          flush=True)


def print_index_waiting() -> None:
    print("another process is bringing the vector index in step with the database; waiting for it", file=sys.stderr,
          flush=True)


def report_environment_failure(failure: EnvironmentFailure) -> int:
    print(f"error: {failure.message}", file=sys.stderr)
    if failure.hint:
        print(f"what to do: {failure.hint}", file=sys.stderr)
    return EXIT_ENVIRONMENT


def quiet_libraries(verbose: bool) -> None:
    """Library logs at WARNING (INFO with --verbose), so progress bars and results stay readable."""
    level = logging.INFO if verbose else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
