"""The settings, the database and the vector index of one data home, opened together."""

from __future__ import annotations

import os
from dataclasses import dataclass

from taskcraft_core.environment import environment_failure
from taskcraft_core.errors import EnvironmentFailure
from taskcraft_core.index.consistency import IndexProgress, ensure_index
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.store.connection import database_location


@dataclass(frozen=True)
class Workspace:
    """What every service is handed: settings, store and index (never module globals)."""

    settings: Settings
    store: Store
    index: VectorIndex

    @classmethod
    def open(cls, settings: Settings, read_only: bool = False) -> Workspace:
        """Open the data home. `read_only` writes nothing (for reading a read-only home): the database
        opens read-only and the index is an empty one in memory (what needs vectors embeds afresh)."""
        try:
            if read_only:
                return cls(settings, Store(settings.resolved_database_url, read_only=True),
                           VectorIndex.in_memory(settings))
            settings.home.mkdir(parents=True, exist_ok=True)
            return cls(settings, Store(settings.resolved_database_url), VectorIndex.open(settings))
        except Exception as error:
            failure = environment_failure_of(error, settings)
            if failure is None:
                raise
            raise failure from error

    @property
    def read_only(self) -> bool:
        return self.store.read_only


def open_workspace(settings: Settings, progress: IndexProgress | None = None) -> Workspace:
    """The workspace of a data home with its index checked, and brought in step with the database if
    needed (with progress), before anything searches it: what the app and the CLI open."""
    workspace = Workspace.open(settings)
    try:
        ensure_index(workspace, progress)
    except Exception as error:
        failure = environment_failure_of(error, settings)
        if failure is None:
            raise
        raise failure from error
    return workspace


def environment_failure_of(error: BaseException, settings: Settings) -> EnvironmentFailure | None:
    """The environment failure an exception stands for in this data home, or None (then it is a bug)."""
    return environment_failure(error, database_location(settings.resolved_database_url), settings.chroma_path)


def settings_from_environment() -> Settings:
    """Settings for the entry points (CLI, app): the process environment, read in one place."""
    return Settings.from_env(os.environ)
