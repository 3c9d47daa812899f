"""What checking the index against the database costs when a data home opens, at the 36k-task scale:
the check when all is in step, bringing back a few lost task vectors, and a rebuild of a deleted index.

    python -m bench.bench_index_check [--n 36000] [--home /tmp/tc-index-check]
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from chromadb.api.shared_system_client import SharedSystemClient

from bench.make_tasks import make_tasks, write_tasks
from taskcraft_core.index.consistency import check_index, ensure_index
from taskcraft_core.index.vectors import TASKS
from taskcraft_core.ingest.pipeline import load_sample_corpus
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace, open_workspace

LOST = 100
T = TypeVar("T")


def timed(label: str, action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    print(f"{label:<58} {elapsed * 1000:9.1f} ms")
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=36_000)
    parser.add_argument("--home", type=Path, default=Path("/tmp/tc-index-check"))
    args = parser.parse_args()
    shutil.rmtree(args.home, ignore_errors=True)
    settings = Settings(home=args.home)
    workspace = Workspace.open(settings)
    load_sample_corpus(workspace)
    write_tasks(workspace.store, make_tasks(args.n, seed=7)[0])
    print(f"{workspace.store.count_tasks()} tasks, {workspace.store.ready_chunk_count()} chunks; "
          "the task vectors are not indexed yet")

    _, first = timed("open: check + embed and add every task vector", lambda: open_workspace(settings))
    _, steady = timed("open: check only (all in step)", lambda: open_workspace(settings))
    _, check = timed("check_index alone", lambda: check_index(workspace))
    collection = workspace.index.collection(TASKS)
    collection.delete(ids=workspace.store.list_task_ids()[-LOST:])
    repair, lost = timed(f"check + restore {LOST} lost task vectors", lambda: ensure_index(workspace))
    assert repair.tasks_indexed == LOST, repair

    shutil.rmtree(settings.chroma_path)
    SharedSystemClient.clear_system_cache()
    _, rebuilt = timed("open after the chroma folder was deleted (full rebuild)", lambda: open_workspace(settings))
    print(f"steady-state check is {steady / rebuilt:.4f} of a full rebuild ({rebuilt / steady:.0f}x cheaper); "
          f"restoring {LOST} vectors costs {lost / rebuilt:.3f} of a rebuild; first index {first:.1f} s")


if __name__ == "__main__":
    main()
