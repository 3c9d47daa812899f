"""How the Store reaches its database: SQLite pragmas, a read-only mode for a read-only data home,
and driver errors that mean "the environment failed" raised as `EnvironmentFailure` naming the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from taskcraft_core.environment import environment_failure, read_only
from taskcraft_core.errors import EnvironmentFailure

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def database_location(url: str) -> str:
    """What messages call the database: its file, or its URL without the password."""
    path = sqlite_path(url)
    return str(path) if path else make_url(url).render_as_string(hide_password=True)


def connect(url: str, read_only_access: bool = False) -> Engine:
    """An engine for the URL whose environment failures are `EnvironmentFailure`s. Read-only opens
    SQLite with `mode=ro` and sets no pragma that writes (WAL mode is a write)."""
    path = sqlite_path(url)
    if path is not None and read_only_access:
        engine = create_engine(_read_only_sqlite_url(path), future=True)
        event.listen(engine, "connect", _sqlite_reading_pragmas)
    else:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True)
        if path is not None:
            event.listen(engine, "connect", _sqlite_pragmas)
    location = database_location(url)

    def name_environment_failure(context: ExceptionContext) -> None:
        failure = environment_failure(context.original_exception, location, Path())
        if failure is not None:
            raise failure from context.original_exception

    event.listen(engine, "handle_error", name_environment_failure)
    return engine


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration (a read-only store cannot upgrade it)."""
    head = ScriptDirectory.from_config(migration_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def migration_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def require_current_schema(engine: Engine, url: str) -> None:
    if not schema_is_current(engine):
        raise EnvironmentFailure(
            f"The database {database_location(url)} is from an older version and cannot be upgraded while "
            "the data home is read-only.", "Open it once with write access (any command), then read it here.",
            database_location(url), "read_only")


def _read_only_sqlite_url(path: Path) -> str:
    """`mode=ro`, or `immutable=1` when the folder is read-only too (SQLite then cannot create the
    shared-memory file WAL mode needs) and no unsaved write-ahead log would be ignored by it."""
    if not path.exists():
        raise EnvironmentFailure(f"There is no database at {path}.", "Check TASKCRAFT_HOME.", str(path), "missing")
    wal = path.with_name(path.name + "-wal")
    folder_writable = _writable(path.parent)
    if folder_writable or Path(str(path) + "-shm").exists():
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    if wal.exists() and wal.stat().st_size > 0:
        raise read_only(str(wal), "its write-ahead log holds changes that only a writer can merge")
    return f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_reading_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
