"""Store methods for what documents are called (identifier, aliases and what they were derived from)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import Engine, select, update

from taskcraft_core.store import tables as t
from taskcraft_core.store.document_state import READY


class DocumentNames(BaseModel):
    """A document's identifier and aliases, with the names the file gave (for re-deriving them)."""

    id: str
    source: str
    title: str
    aliases: list[str]
    page_title: str | None
    heading: str | None
    site_name: str | None


class DocumentLinks(BaseModel):
    """A document's outgoing links, with the source they are relative to."""

    id: str
    source: str
    links: list[str]


class DocumentNamesStore:
    """Mixed into Store: reading and renaming documents' identifiers without loading their text."""

    engine: Engine

    def document_names(self) -> list[DocumentNames]:
        columns = [t.documents.c[name] for name in DocumentNames.model_fields]
        with self.engine.connect() as c:
            rows = c.execute(select(*columns).where(t.documents.c.state == READY)
                             .order_by(t.documents.c.created_at, t.documents.c.id))
            return [DocumentNames(**row._mapping) for row in rows]

    def document_links(self) -> list[DocumentLinks]:
        columns = [t.documents.c[name] for name in DocumentLinks.model_fields]
        with self.engine.connect() as c:
            query = select(*columns).where(t.documents.c.state == READY).order_by(t.documents.c.id)
            return [DocumentLinks(**row._mapping) for row in c.execute(query)]

    def rename_document(self, document_id: str, title: str, aliases: list[str]) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.documents).where(t.documents.c.id == document_id).values(title=title, aliases=aliases))
