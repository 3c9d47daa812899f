"""A lock held by whoever brings the vector index in step with this database, across processes.

Several app processes (replicas, a CLI beside the app) open the same data home; each checks the
index on open and, when it is out of step, embeds what is missing. One repair is enough: the lock
lets the first do it while the others wait and then find the index in step. On PostgreSQL it is a
session advisory lock (released by the server if the holder dies); on a SQLite file a file lock
beside it (processes sharing a SQLite database share its machine); in-memory SQLite, a lock in
this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text

from taskcraft_core.store.connection import sqlite_path
from taskcraft_core.store.run_locks import advisory_key

_memory_locks: dict[str, threading.Lock] = {}
_memory_locks_guard = threading.Lock()


class MaintenanceLockStore:
    """`maintenance_lock(name, wait)`: exclusive across every process using the same database."""

    engine: Engine
    url: str

    @contextmanager
    def maintenance_lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Hold the lock `name` for the block; yields False (at once) when `wait` is off and another
        holder has it, True when held."""
        path = sqlite_path(self.url)
        if self.engine.dialect.name == "postgresql":
            with self._advisory_lock(name, wait) as held:
                yield held
        elif path is not None:
            lock = FileLock(f"{path}.{name}.lock")
            try:
                lock.acquire(timeout=-1 if wait else 0)
            except Timeout:
                yield False
                return
            try:
                yield True
            finally:
                lock.release()
        else:
            with _memory_locks_guard:
                memory_lock = _memory_locks.setdefault(f"{self.url}:{name}", threading.Lock())
            if not memory_lock.acquire(blocking=wait):
                yield False
                return
            try:
                yield True
            finally:
                memory_lock.release()

    @contextmanager
    def _advisory_lock(self, name: str, wait: bool) -> Iterator[bool]:
        key = advisory_key(f"taskcraft-maintenance:{name}")
        with self.engine.connect() as connection:
            if wait:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                held = True
            else:
                held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
