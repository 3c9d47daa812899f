"""A lock per generation run, held across processes while a work unit's result is recorded.

Queue workers on several machines finish units of one run at once; each reads the run's progress,
adds its unit and writes it back. On PostgreSQL a session advisory lock (released by the server
if the holder dies) serialises those read-modify-writes; elsewhere a lock in this process does
(SQLite databases are only shared by one process's threads here).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class RunLockStore:
    """`run_lock(run_id)`: exclusive across every process using the same database."""

    engine: Engine

    @contextmanager
    def run_lock(self, run_id: str) -> Iterator[None]:
        if self.engine.dialect.name != "postgresql":
            with _local_locks_guard:
                lock = _local_locks.setdefault(run_id, threading.Lock())
            with lock:
                yield
            return
        key = advisory_key(f"taskcraft-run:{run_id}")
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
