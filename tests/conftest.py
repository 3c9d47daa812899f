"""Shared fixtures: a real SQLite database and a real Chroma directory in tmp_path, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskcraft_core.index import VectorIndex
from taskcraft_core.settings import ENV_FIELDS, Settings
from taskcraft_core.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's keys, endpoints or data home."""
    for name in ENV_FIELDS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings.resolved_database_url)


@pytest.fixture
def index(settings: Settings) -> VectorIndex:
    return VectorIndex.open(settings)
