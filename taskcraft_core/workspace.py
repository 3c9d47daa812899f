"""The settings, the database and the vector index of one data home, opened together, and who acts on them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from taskcraft_core.access import Principal, local_principal
from taskcraft_core.environment import environment_failure
from taskcraft_core.errors import EnvironmentFailure, TaskCraftError
from taskcraft_core.index.consistency import INLINE_REPAIR_LIMIT, IndexCatchUp, IndexProgress, ensure_index
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.store.connection import database_location


@dataclass(frozen=True)
class Workspace:
    """What every service is handed: settings, store and index (never module globals), and the
    principal acting, whose role the services that change data check (local mode: may do everything)."""

    settings: Settings
    store: Store
    index: VectorIndex
    principal: Principal = field(default_factory=local_principal)

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

    def acting_as(self, principal: Principal) -> Workspace:
        """The same workspace, with another person acting."""
        return replace(self, principal=principal)

    def audit(self, action: str, target: str = "", details: dict[str, object] | None = None) -> None:
        """Append one entry to the audit log in the acting principal's name (a read-only home, where
        only reading commands run, records nothing)."""
        if not self.read_only:
            self.store.record_audit(self.principal, action, target, dict(details or {}))


def open_workspace(settings: Settings, progress: IndexProgress | None = None,
                   waiting: Callable[[], None] | None = None) -> Workspace:
    """The workspace of a data home with its index checked, and brought in step with the database if
    needed (with progress; `waiting` is called when another process is repairing it), before anything
    searches it: what the CLI opens."""
    workspace = Workspace.open(settings)
    try:
        ensure_index(workspace, progress, waiting)
    except Exception as error:
        failure = environment_failure_of(error, settings)
        if failure is None:
            raise
        raise failure from error
    return workspace


def open_workspace_catching_up(settings: Settings,
                               inline_limit: int = INLINE_REPAIR_LIMIT) -> tuple[Workspace, IndexCatchUp]:
    """The workspace of a data home for the app, which must not hold its first page for minutes: an
    index a few entries out of step is repaired now, a larger gap in the background (the returned
    catch-up tells its progress; runs and searches that need the index wait for it or say so)."""
    workspace = Workspace.open(settings)
    catch_up = IndexCatchUp(workspace, inline_limit)
    try:
        catch_up.start()
    except Exception as error:
        failure = environment_failure_of(error, settings)
        if failure is None:
            raise
        raise failure from error
    return workspace, catch_up


def environment_failure_of(error: BaseException, settings: Settings) -> EnvironmentFailure | None:
    """The environment failure an exception stands for in this data home, or None (then it is a bug)."""
    return environment_failure(error, database_location(settings.resolved_database_url), settings.chroma_path)



def settings_from_environment() -> Settings:
    """Settings for the entry points (CLI, app): the process environment, read in one place."""
    try:
        return Settings.from_env(os.environ)
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise TaskCraftError(f"Invalid setting in the environment: {problems}",
                             "Fix the environment variable named above (see the README's Configuration).") from None
