"""The audit log: who changed settings, ran generation, imported, exported or deleted, and when.

Rows are only ever appended. `details` holds what the action was given (never a key: callers pass
what was changed, not secret values).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, insert, select

from taskcraft_core.access import Principal
from taskcraft_core.schema import utcnow
from taskcraft_core.store import tables as t


class AuditEntry(BaseModel):
    """One audited action."""

    id: int | None = None
    at: datetime = Field(default_factory=utcnow)
    actor: str = Field(description="The principal's id: an email when signed in, the typed name in local mode.")
    role: str
    action: str = Field(description="settings, generate, resume, cancel, import, export, delete, ...")
    target: str = Field("", description="What the action was about: a run id, a file name, a document id.")
    details: dict[str, Any] = Field(default_factory=dict)


class AuditStore:
    """Store methods for the audit log (mixed into `Store`)."""

    engine: Engine

    def record_audit(self, principal: Principal, action: str, target: str = "",
                     details: dict[str, Any] | None = None) -> AuditEntry:
        entry = AuditEntry(actor=principal.id or "local user", role=principal.role, action=action, target=target,
                           details=details or {})
        with self.engine.begin() as c:
            inserted = c.execute(insert(t.audit_log).values(entry.model_dump(exclude={"id"})))
            entry.id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        return entry

    def list_audit(self, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
        """The newest entries first."""
        query = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        if action:
            query = query.where(t.audit_log.c.action == action)
        with self.engine.connect() as c:
            return [AuditEntry(**row._mapping) for row in c.execute(query)]
