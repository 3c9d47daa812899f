"""Task vectors: every stored task embedded into the Chroma task collection, kept in step with the
database (hash-checked against edits) and rebuildable from it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from taskcraft_core.index.vectors import TASKS, VectorIndex, task_text
from taskcraft_core.schema import Task
from taskcraft_core.store import Store, TaskFilter

TEXT_BATCH = 1000


class IndexedStore(Protocol):
    """What task vectors need of a workspace: the database they mirror and the index they fill."""

    @property
    def store(self) -> Store: ...
    @property
    def index(self) -> VectorIndex: ...


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def index_tasks(workspace: IndexedStore, tasks: Sequence[Task]) -> None:
    """Embed tasks and store their vectors in the Chroma task collection (as tasks are stored)."""
    if not tasks:
        return
    texts = [task_text(task) for task in tasks]
    _store_vectors(workspace, tasks, texts, workspace.index.embed(texts))


def _store_vectors(workspace: IndexedStore, tasks: Sequence[Task], texts: Sequence[str], vectors: np.ndarray) -> None:
    metadatas = [{"kind": task.kind, "status": task.status, "text_hash": text_hash(text)}
                 for task, text in zip(tasks, texts, strict=False)]
    workspace.index.upsert_task_vectors([task.id for task in tasks], vectors, metadatas)


def rebuild_task_index(workspace: IndexedStore) -> int:
    """Drop the task collection and embed every stored task again; returns the number indexed."""
    workspace.index.clear_tasks()
    count = 0
    for batch, _ in task_batches(workspace, TaskFilter()):
        index_tasks(workspace, batch)
        count += len(batch)
    return count


def sync_task_index(workspace: IndexedStore) -> int:
    """Index the stored tasks the collection lacks (cheap when nothing is missing); returns how many."""
    if workspace.index.collection(TASKS).count() == workspace.store.count_tasks():
        return 0
    indexed = set(workspace.index.task_ids())
    missing = [task_id for task_id in workspace.store.list_task_ids() if task_id not in indexed]
    for start in range(0, len(missing), TEXT_BATCH):
        index_tasks(workspace, workspace.store.get_tasks(missing[start : start + TEXT_BATCH], with_trajectory=False))
    return len(missing)


def task_vectors(workspace: IndexedStore, tasks: Sequence[Task]) -> np.ndarray:
    """Unit vectors of the tasks, in order: read from the collection, embedding only what is missing
    or stale (and storing it, so the next call finds it)."""
    texts = [task_text(task) for task in tasks]
    ids, stored, metadatas = workspace.index.task_vectors([task.id for task in tasks])
    row_of = {task_id: row for row, task_id in enumerate(ids)}
    fresh_rows = {
        i: row_of[task.id] for i, (task, text) in enumerate(zip(tasks, texts, strict=False))
        if task.id in row_of and metadatas[row_of[task.id]].get("text_hash") == text_hash(text)
    }
    stale = [i for i in range(len(tasks)) if i not in fresh_rows]
    embedded = workspace.index.embed([texts[i] for i in stale]) if stale else None
    if embedded is not None:
        _store_vectors(workspace, [tasks[i] for i in stale], [texts[i] for i in stale], embedded)
    dim = embedded.shape[1] if embedded is not None else stored.shape[1]
    vectors = np.zeros((len(tasks), dim), dtype=np.float32)
    if embedded is not None:
        vectors[stale] = embedded
    if fresh_rows:
        vectors[list(fresh_rows)] = stored[list(fresh_rows.values())]
    return vectors


def task_batches(
    workspace: IndexedStore, task_filter: TaskFilter,
) -> Iterable[tuple[list[Task], dict[str, int | None]]]:
    """Matching tasks a batch at a time, each with the newest review id of its tasks. The ids are
    read first, so a decision landing in between shows later as a change, never goes unseen."""
    ids = workspace.store.list_task_ids(task_filter)
    for start in range(0, len(ids), TEXT_BATCH):
        batch = ids[start : start + TEXT_BATCH]
        latest = workspace.store.latest_review_ids(batch)
        yield workspace.store.get_tasks(batch, with_trajectory=False), latest
