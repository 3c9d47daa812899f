"""The settings, the database and the vector index of one data home, opened together."""

from __future__ import annotations

import os
from dataclasses import dataclass

from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store


@dataclass(frozen=True)
class Workspace:
    """What every service is handed: settings, store and index (never module globals)."""

    settings: Settings
    store: Store
    index: VectorIndex

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(settings, Store(settings.resolved_database_url), VectorIndex.open(settings))


def settings_from_environment() -> Settings:
    """Settings for the entry points (CLI, app): the process environment, read in one place."""
    return Settings.from_env(os.environ)
