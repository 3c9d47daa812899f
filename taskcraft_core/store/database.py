"""The database owns the data: documents, chunks, tasks with trajectories, reviews and runs.

Any SQLAlchemy URL works; SQLite (the default) runs in WAL mode. The schema is created and
upgraded with Alembic on open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from taskcraft_core.store.documents import DocumentStore
from taskcraft_core.store.reviews import ReviewStore
from taskcraft_core.store.run_locks import RunLockStore
from taskcraft_core.store.runs import RunStore
from taskcraft_core.store.tasks import TaskStore

MIGRATIONS = Path(__file__).parent / "migrations"


def _enable_sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store(DocumentStore, TaskStore, ReviewStore, RunStore, RunLockStore):
    """All reads and writes of the studio's records, one mixin per record family."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_wal)
        upgrade_schema(self.engine)
