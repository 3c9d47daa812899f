"""Shared fixtures: a real SQLite database and a real Chroma directory in tmp_path, no network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import ENV_FIELDS, Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace
from tests.stub_openai import StubOpenAI

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


@pytest.fixture
def workspace(settings: Settings, store: Store, index: VectorIndex) -> Workspace:
    """The settings, database and index of one test's data home, opened together."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return Workspace(settings, store, index)


@pytest.fixture
def stub_openai() -> Iterator[StubOpenAI]:
    """A scriptable OpenAI-compatible server on 127.0.0.1 (see tests/stub_openai.py)."""
    with StubOpenAI() as server:
        yield server


@pytest.fixture
def stub_settings(settings: Settings, stub_openai: StubOpenAI) -> Settings:
    """Settings pointing at the stub server: short timeout, one retry, no response cache."""
    return settings.with_changes(
        openai_base_url=stub_openai.base_url,
        openai_api_key="sk-test-secret-0123456789",
        model="stub-model",
        request_timeout_s=2.0,
        max_retries=1,
        cache_responses=False,
    )
