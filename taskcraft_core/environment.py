"""Environment failures told apart from bugs: a damaged database file, a read-only data home or
Chroma folder, a full disk become one `EnvironmentFailure` that names the file and what to do."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from taskcraft_core.errors import EnvironmentFailure

# SQLite's words for each failure (the messages of sqlite3 and of Chroma's own SQLite).
DAMAGED = ("database disk image is malformed", "file is not a database", "file is encrypted or is not a database")
READ_ONLY = ("attempt to write a readonly database", "readonly database", "unable to open database file")
FULL = ("database or disk is full", "no space left on device")
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
# Less free space than this on the index's disk makes a failing Chroma write a full disk.
LOW_SPACE_BYTES = 1 << 20


def damaged_database(path: str, detail: str) -> EnvironmentFailure:
    return EnvironmentFailure(
        f"The database file {path} is damaged ({detail}).",
        "Restore it from a backup (or move it aside to start empty); then run `reindex` to rebuild the "
        "vector index from it.", path, "damaged")


def read_only(path: str, detail: str) -> EnvironmentFailure:
    return EnvironmentFailure(
        f"Cannot write {path}: it or its folder is read-only or not accessible ({detail}).",
        "Fix the permissions (the user running the studio must be able to write the data home), or point "
        "TASKCRAFT_HOME at a writable folder. Reading commands (`runs`, `export`) work on a read-only home.",
        path, "read_only")


def disk_full(path: str, detail: str) -> EnvironmentFailure:
    return EnvironmentFailure(
        f"The disk holding {path} is full ({detail}).",
        "Free some space and run the command again; nothing half-written is kept as if it were complete.",
        path, "disk_full")


def broken_index(path: str, detail: str) -> EnvironmentFailure:
    return EnvironmentFailure(
        f"The vector index at {path} failed ({detail}).",
        "Run `reindex` to rebuild it from the database; if that fails too, move the folder aside and run "
        "`reindex` again.", path, "index")


def environment_failure(error: BaseException, database_path: str, chroma_path: Path) -> EnvironmentFailure | None:
    """The environment failure `error` stands for, or None when it is something else (a bug)."""
    if isinstance(error, EnvironmentFailure):
        return error
    detail = _detail(error)
    lowered = detail.lower()
    if _from_chroma(error):
        return _chroma_failure(chroma_path, detail)
    if isinstance(error, OSError) and error.errno is not None:
        path = str(error.filename or database_path)
        if error.errno in FULL_ERRNOS:
            return disk_full(path, detail)
        if error.errno in READ_ONLY_ERRNOS:
            return read_only(path, detail)
        return None
    if not _is_sqlite_error(error):
        return None
    if any(words in lowered for words in DAMAGED):
        return damaged_database(database_path, detail)
    if any(words in lowered for words in FULL):
        return disk_full(database_path, detail)
    if any(words in lowered for words in READ_ONLY):
        return read_only(database_path, detail)
    if "disk i/o error" in lowered:
        return _io_failure(Path(database_path), detail)
    return None


def _chroma_failure(chroma_path: Path, detail: str) -> EnvironmentFailure:
    """Chroma's errors rarely say why (a full disk reads "Failed to apply logs to the metadata
    segment"), so the folder itself is asked: is it writable, is there space left."""
    lowered = detail.lower()
    if any(words in lowered for words in DAMAGED):
        return broken_index(str(chroma_path), detail)
    return _io_failure(chroma_path, detail, otherwise=broken_index)


def _io_failure(path: Path, detail: str,
                otherwise: Callable[[str, str], EnvironmentFailure] = disk_full) -> EnvironmentFailure:
    """Which of read-only, full or `otherwise` a failed write to `path` was, judged by the folder."""
    existing = _nearest_existing(path)
    lowered = detail.lower()
    if any(words in lowered for words in READ_ONLY) or not os.access(existing, os.W_OK) or (
            existing.is_dir() and any(not os.access(item, os.W_OK) for item in existing.iterdir())):
        return read_only(str(path), detail)
    if any(words in lowered for words in FULL) or shutil.disk_usage(existing).free < LOW_SPACE_BYTES:
        return disk_full(str(path), detail)
    return otherwise(str(path), detail)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _detail(error: BaseException) -> str:
    """The innermost message: SQLAlchemy wraps the driver's error and adds SQL and a link."""
    original = getattr(error, "orig", None)
    text = str(original if isinstance(original, BaseException) else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_sqlite_error(error: BaseException) -> bool:
    return isinstance(getattr(error, "orig", error), sqlite3.Error)


def _from_chroma(error: BaseException) -> bool:
    """Raised by Chroma: its own error types, or any error its code raised (a folder it cannot write
    surfaces as a ValueError or an AttributeError from its half-started client)."""
    if type(error).__module__.startswith("chromadb"):
        return True
    innermost = error.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    return innermost is not None and f"{os.sep}chromadb{os.sep}" in innermost.tb_frame.f_code.co_filename
