"""The database owns the data: documents, chunks, tasks with trajectories, reviews, runs and their
exploration steps.

Any SQLAlchemy URL works; SQLite (the default) runs in WAL mode. The schema is created and
upgraded with Alembic on open.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from taskcraft_core.store.audit import AuditStore
from taskcraft_core.store.checks import CheckStore
from taskcraft_core.store.connection import connect, require_current_schema
from taskcraft_core.store.document_state import DocumentStateStore
from taskcraft_core.store.documents import DocumentStore
from taskcraft_core.store.explorations import ExplorationStore
from taskcraft_core.store.lineage import LineageStore
from taskcraft_core.store.maintenance_lock import MaintenanceLockStore
from taskcraft_core.store.names import DocumentNamesStore
from taskcraft_core.store.review_rounds import ReviewRoundStore
from taskcraft_core.store.reviews import ReviewStore
from taskcraft_core.store.run_locks import RunLockStore
from taskcraft_core.store.runs import RunStore
from taskcraft_core.store.task_outcomes import TaskOutcomeStore
from taskcraft_core.store.tasks import TaskStore

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store(DocumentStore, DocumentStateStore, DocumentNamesStore, TaskStore, TaskOutcomeStore, ReviewStore,
            ReviewRoundStore, RunStore, LineageStore, AuditStore, CheckStore, RunLockStore,
            MaintenanceLockStore, ExplorationStore):
    """All reads and writes of the studio's records, one mixin per record family. `read_only` opens
    the database without writing anything (reading commands on a read-only data home); it must then
    be at the newest schema."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self.engine = connect(url, read_only)
        if read_only:
            require_current_schema(self.engine, url)
        else:
            upgrade_schema(self.engine)
