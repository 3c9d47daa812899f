"""The settings, the database and the vector index of one data home, opened together, and who acts on them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from taskcraft_core.access import Principal, local_principal
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.vectors import VectorIndex
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store


@dataclass(frozen=True)
class Workspace:
    """What every service is handed: settings, store and index (never module globals), and the
    principal acting, whose role the services that change data check (local mode: may do everything)."""

    settings: Settings
    store: Store
    index: VectorIndex
    principal: Principal = field(default_factory=local_principal)

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(settings, Store(settings.resolved_database_url), VectorIndex.open(settings))

    def acting_as(self, principal: Principal) -> Workspace:
        """The same workspace, with another person acting."""
        return replace(self, principal=principal)

    def audit(self, action: str, target: str = "", details: dict[str, object] | None = None) -> None:
        """Append one entry to the audit log in the acting principal's name."""
        self.store.record_audit(self.principal, action, target, dict(details or {}))


def settings_from_environment() -> Settings:
    """Settings for the entry points (CLI, app): the process environment, read in one place."""
    try:
        return Settings.from_env(os.environ)
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise TaskCraftError(f"Invalid setting in the environment: {problems}",
                             "Fix the environment variable named above (see the README's Configuration).") from None
