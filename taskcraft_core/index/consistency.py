"""The index kept in step with the database, checked whenever a workspace opens and before a run.

The database owns the data; the Chroma collections are derived from it. An index that does not match
(deleted, emptied, restored from another backup, half-written by a failed ingest) is detected by
counts per collection plus a sample of ids from both ends of the database, and brought back in step
before anything searches it. Documents an ingest left "indexing" are finished first. One process at
a time repairs (a lock on the database); the others wait for it and then find the index in step.

The app does not hold its first page for a large repair (36,000 tasks imported without vectors take
minutes to embed): `IndexCatchUp` repairs a small gap at once and a large one in a background thread,
whose progress the pages that search the index show.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from pydantic import BaseModel

from taskcraft_core.index.task_vectors import TEXT_BATCH, IndexedStore, index_tasks
from taskcraft_core.index.vectors import CHUNKS, TASKS

logger = logging.getLogger(__name__)

IndexProgress = Callable[[str, int, int], None]  # (what is being indexed, done, total)
# Collection ids are listed in pages of this size (below SQLite's limit on query variables).
ID_PAGE = 5000
REPAIR_LOCK = "index-repair"
# Entries an app process embeds before its first page (about a second with WordLlama on one core);
# a larger gap is caught up in the background.
INLINE_REPAIR_LIMIT = 200


class CollectionCheck(BaseModel):
    """One collection against the database: how many entries each holds, and sampled ids missing."""

    name: str
    expected: int
    indexed: int
    missing_samples: int

    @property
    def in_step(self) -> bool:
        return self.expected == self.indexed and self.missing_samples == 0


class IndexRepair(BaseModel):
    """What bringing the index in step did (all zero when it already was)."""

    documents_finished: int = 0
    chunks_indexed: int = 0
    chunks_removed: int = 0
    tasks_indexed: int = 0
    tasks_removed: int = 0

    @property
    def changed(self) -> bool:
        return any(self.model_dump().values())


def check_index(workspace: IndexedStore) -> list[CollectionCheck]:
    """The chunk and task collections against the database (cheap: counts and a few ids)."""
    store, index = workspace.store, workspace.index
    return [
        CollectionCheck(name=CHUNKS, expected=store.ready_chunk_count(), indexed=index.collection(CHUNKS).count(),
                        missing_samples=_missing(workspace, CHUNKS, store.sample_chunk_ids())),
        CollectionCheck(name=TASKS, expected=store.count_tasks(), indexed=index.collection(TASKS).count(),
                        missing_samples=_missing(workspace, TASKS, store.sample_task_ids())),
    ]


def index_gap(workspace: IndexedStore) -> int:
    """About how many entries a repair would embed or remove: the count differences, the whole
    collection when sampled ids are missing (another database's index), plus unfinished chunks."""
    gap = sum(check.expected if check.missing_samples else abs(check.expected - check.indexed)
              for check in check_index(workspace))
    return gap + sum(len(chunks) for _, chunks in workspace.store.unfinished_documents())


def ensure_index(workspace: IndexedStore, progress: IndexProgress | None = None,
                 waiting: Callable[[], None] | None = None) -> IndexRepair:
    """Finish documents left "indexing", then bring each collection that does not match the
    database back in step: missing entries embedded and added, entries of nothing removed. While
    another process repairs, this waits for it (calling `waiting` first) and then checks again."""
    with _repair_lock(workspace, waiting):
        return _bring_in_step(workspace, progress)


@contextmanager
def _repair_lock(workspace: IndexedStore, waiting: Callable[[], None] | None) -> Iterator[None]:
    with workspace.store.maintenance_lock(REPAIR_LOCK, wait=False) as held:
        if held:
            yield
            return
    if waiting:
        waiting()
    with workspace.store.maintenance_lock(REPAIR_LOCK):
        yield


def _bring_in_step(workspace: IndexedStore, progress: IndexProgress | None) -> IndexRepair:
    repair = IndexRepair(documents_finished=finish_unfinished_documents(workspace))
    for check in check_index(workspace):
        if check.in_step:
            continue
        # Chunks are what verification searches: a mismatch there is an anomaly worth a warning. Task
        # vectors only serve near-duplicate search, whose users also add missing ones as they go.
        logger.log(logging.WARNING if check.name == CHUNKS else logging.INFO,
                   "the %s index does not match the database (%d of %d entries, %d sampled ids missing); "
                   "bringing it in step", check.name, check.indexed, check.expected, check.missing_samples)
        if check.name == CHUNKS:
            repair.chunks_indexed, repair.chunks_removed = _sync_chunks(workspace, progress)
        else:
            repair.tasks_indexed, repair.tasks_removed = _sync_tasks(workspace, progress)
    return repair


def finish_unfinished_documents(workspace: IndexedStore) -> int:
    """Index the chunks of documents whose ingest stopped after their rows were written, and mark them
    ready (their rows were written in one transaction, so they are whole); returns how many."""
    unfinished = workspace.store.unfinished_documents()
    for document, chunks in unfinished:
        workspace.index.add_chunks(document, chunks)  # an upsert: vectors written before are replaced
        workspace.store.mark_document_ready(document.id)
        logger.warning("finished indexing %s (%s), left incomplete by an earlier ingest", document.id, document.source)
    return len(unfinished)


def _missing(workspace: IndexedStore, collection: str, ids: list[str]) -> int:
    if not ids:
        return 0
    found = workspace.index.collection(collection).get(ids=list(dict.fromkeys(ids)), include=[])["ids"]
    return len(set(ids) - set(found))


def _collection_ids(workspace: IndexedStore, name: str) -> set[str]:
    collection = workspace.index.collection(name)
    return {entry for start in range(0, collection.count(), ID_PAGE)
            for entry in collection.get(limit=ID_PAGE, offset=start, include=[])["ids"]}


def _remove(workspace: IndexedStore, name: str, ids: set[str]) -> int:
    ordered = sorted(ids)
    for start in range(0, len(ordered), ID_PAGE):
        workspace.index.collection(name).delete(ids=ordered[start : start + ID_PAGE])
    return len(ordered)


def _sync_chunks(workspace: IndexedStore, progress: IndexProgress | None) -> tuple[int, int]:
    """Add the chunks of ready documents the collection lacks and remove entries of no chunk (the
    vectors of a document another process is ingesting right now are left alone)."""
    # The index is read first: an entry written after this read is never taken for a stale one (it
    # can only show up as missing and be written again), while ingest and imports go on meanwhile.
    indexed = _collection_ids(workspace, CHUNKS)
    in_flight = {chunk.id for _, chunks in workspace.store.unfinished_documents() for chunk in chunks}
    expected = workspace.store.ready_chunk_ids()
    removed = _remove(workspace, CHUNKS, indexed - expected - in_flight)
    missing = expected - indexed
    if not missing:
        return 0, removed
    total, done = len(missing), 0
    for summary in workspace.store.list_documents():
        chunks = [chunk for chunk in workspace.store.get_chunks(summary.id) if chunk.id in missing]
        document = workspace.store.get_document(summary.id) if chunks else None
        if document is not None:
            workspace.index.add_chunks(document, chunks)
            done += len(chunks)
            if progress:
                progress("chunks", done, total)
    return done, removed


def _sync_tasks(workspace: IndexedStore, progress: IndexProgress | None) -> tuple[int, int]:
    """Embed the stored tasks the collection lacks and remove vectors of tasks no longer stored."""
    indexed = _collection_ids(workspace, TASKS)  # first, as for chunks
    expected = set(workspace.store.list_task_ids())
    removed = _remove(workspace, TASKS, indexed - expected)
    missing = sorted(expected - indexed)
    for start in range(0, len(missing), TEXT_BATCH):
        index_tasks(workspace, workspace.store.get_tasks(missing[start : start + TEXT_BATCH], with_trajectory=False))
        if progress:
            progress("tasks", min(start + TEXT_BATCH, len(missing)), len(missing))
    return len(missing), removed


class CatchUpStatus(BaseModel):
    """Where the index of an open data home stands: `in_step`; `waiting` (another process repairs it);
    `running` (this process embeds `done` of `total` missing `what`); `failed` (with the error)."""

    state: Literal["in_step", "waiting", "running", "failed"] = "in_step"
    what: str = ""
    done: int = 0
    total: int = 0
    error: str = ""


class IndexCatchUp:
    """Brings one data home's index in step for a process: a gap up to `inline_limit` entries at once
    (`start` returns when it is done), a larger one, or one another process is repairing, in one
    background thread (`start` returns at once; `status` tells the progress, `wait` blocks until it ends)."""

    def __init__(self, workspace: IndexedStore, inline_limit: int = INLINE_REPAIR_LIMIT) -> None:
        self.workspace = workspace
        self.inline_limit = inline_limit
        self._status = CatchUpStatus()
        self._guard = threading.Lock()
        self._started = False
        self._thread = threading.Thread(target=self._repair_in_background, name="taskcraft-index-catch-up",
                                        daemon=True)

    def start(self) -> None:
        """Check the index and repair it (inline or in the background); a second call does nothing."""
        with self._guard:
            if self._started:
                return
            self._started = True
        if index_gap(self.workspace) <= self.inline_limit and self._repair_inline():
            return
        self._set(state="running")
        self._thread.start()

    @property
    def status(self) -> CatchUpStatus:
        with self._guard:
            return self._status.model_copy()

    def wait(self, timeout_s: float | None = None) -> CatchUpStatus:
        """Block until a background catch-up has ended (or the timeout passed); the status then."""
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return self.status

    def _repair_inline(self) -> bool:
        """Repair now unless another process is repairing (False: then it is left to the background)."""
        with self.workspace.store.maintenance_lock(REPAIR_LOCK, wait=False) as held:
            if held:
                _bring_in_step(self.workspace, None)
            return held

    def _repair_in_background(self) -> None:
        try:
            with _repair_lock(self.workspace, waiting=lambda: self._set(state="waiting")):
                self._set(state="running")
                _bring_in_step(self.workspace, self._progress)
        except Exception as error:  # the app goes on with the index as it is; the next process retries
            logger.exception("bringing the index in step failed")
            self._set(state="failed", error=str(error) or type(error).__name__)
            return
        self._set(state="in_step", what="", done=0, total=0)

    def _progress(self, what: str, done: int, total: int) -> None:
        self._set(state="running", what=what, done=done, total=total)

    def _set(self, **changes: object) -> None:
        with self._guard:
            self._status = self._status.model_copy(update=changes)
