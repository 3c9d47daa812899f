"""Documents and their chunks: stored together, listed without their text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic import BaseModel
from sqlalchemy import Engine, delete, func, insert, select

from taskcraft_core.schema import (
    Chunk,
    Document,
)
from taskcraft_core.store import tables as t
from taskcraft_core.store.document_state import INDEXING, READY


class DocumentSummary(BaseModel):
    """A row of the corpus list: a document without its text, with its chunk count."""

    id: str
    source: str
    title: str
    doc_type: str
    pages: int
    chunk_count: int
    characters: int


class DocumentStore:
    """Reads and writes of documents and chunks."""

    engine: Engine

    def add_document(self, document: Document, chunks: Sequence[Chunk], *, indexing: bool = False) -> bool:
        """Store a document with its chunks; False when the same content is stored and ready (a copy
        a failed ingest left "indexing" is replaced). With `indexing` (ingest, which writes the
        vectors next) it is stored "indexing", not present until `mark_document_ready`."""
        with self.engine.begin() as c:
            same = t.documents.c.content_hash == document.content_hash
            stale = select(t.documents.c.id).where(same, t.documents.c.state == INDEXING).scalar_subquery()
            c.execute(delete(t.chunks).where(t.chunks.c.document_id == stale))
            c.execute(delete(t.documents).where(same, t.documents.c.state == INDEXING))
            if c.scalar(select(t.documents.c.id).where(same)):
                return False
            c.execute(insert(t.documents), [document.model_dump() | {"state": INDEXING if indexing else READY}])
            if chunks:
                c.execute(insert(t.chunks), [chunk.model_dump() for chunk in chunks])
        return True

    def list_documents(self) -> list[DocumentSummary]:
        """Ready documents (one whose ingest has not finished is not present)."""
        counts = (
            select(t.chunks.c.document_id, func.count().label("n")).group_by(t.chunks.c.document_id).subquery()
        )
        query = (
            select(
                t.documents.c.id,
                t.documents.c.source,
                t.documents.c.title,
                t.documents.c.doc_type,
                t.documents.c.pages,
                func.coalesce(counts.c.n, 0).label("chunk_count"),
                func.length(t.documents.c.text).label("characters"),
            )
            .outerjoin(counts, counts.c.document_id == t.documents.c.id)
            .where(t.documents.c.state == READY)
            .order_by(t.documents.c.created_at, t.documents.c.id)
        )
        with self.engine.connect() as c:
            return [DocumentSummary(**row._mapping) for row in c.execute(query)]

    def document_titles(self) -> dict[str, str]:
        """Id -> title of every document, oldest first: no text read, no chunks counted (filters, records)."""
        query = select(t.documents.c.id, t.documents.c.title).order_by(t.documents.c.created_at, t.documents.c.id)
        with self.engine.connect() as c:
            return {document_id: title for document_id, title in c.execute(query)}

    def get_document(self, document_id: str) -> Document | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.documents).where(t.documents.c.id == document_id)).first()
        return Document(**row._mapping) if row else None

    def delete_document(self, document_id: str) -> bool:
        with self.engine.begin() as c:
            c.execute(delete(t.chunks).where(t.chunks.c.document_id == document_id))
            return c.execute(delete(t.documents).where(t.documents.c.id == document_id)).rowcount > 0

    def get_chunks(self, document_id: str) -> list[Chunk]:
        query = select(t.chunks).where(t.chunks.c.document_id == document_id).order_by(t.chunks.c.position)
        with self.engine.connect() as c:
            return [Chunk(**row._mapping) for row in c.execute(query)]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.chunks).where(t.chunks.c.id == chunk_id)).first()
        return Chunk(**row._mapping) if row else None

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[list[Chunk]]:
        """All chunks of ready documents in batches, for rebuilding the vector index."""
        ready = select(t.documents.c.id).where(t.documents.c.state == READY)
        with self.engine.connect() as c:
            result = c.execution_options(stream_results=True).execute(
                select(t.chunks).where(t.chunks.c.document_id.in_(ready))
                .order_by(t.chunks.c.document_id, t.chunks.c.position)
            )
            for rows in result.partitions(batch_size):
                yield [Chunk(**row._mapping) for row in rows]
