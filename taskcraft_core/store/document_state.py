"""Documents as one unit with their vectors: the rows are written "indexing", marked "ready" once
the index holds their chunks; what a failed ingest left "indexing" is finished or removed later."""

from __future__ import annotations

from sqlalchemy import Engine, Select, delete, func, select, update

from taskcraft_core.schema import Chunk, Document
from taskcraft_core.store import tables as t

INDEXING = "indexing"
READY = "ready"
# Ids sampled from each end of the database to tell an index of this database from another one.
SAMPLE_IDS = 20


class DocumentStateStore:
    """The document-state and index-expectation queries of the Store (mixed into `Store`)."""

    engine: Engine

    def mark_document_ready(self, document_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.documents).where(t.documents.c.id == document_id).values(state=READY))

    def unfinished_documents(self) -> list[tuple[Document, list[Chunk]]]:
        """Documents whose ingest stopped between their rows and their vectors, with their chunks."""
        with self.engine.connect() as c:
            documents = [Document(**row._mapping) for row in
                         c.execute(select(t.documents).where(t.documents.c.state == INDEXING))]
            chunks: dict[str, list[Chunk]] = {}
            query = (select(t.chunks).where(t.chunks.c.document_id.in_([d.id for d in documents]))
                     .order_by(t.chunks.c.document_id, t.chunks.c.position))
            for row in c.execute(query):
                chunks.setdefault(row.document_id, []).append(Chunk(**row._mapping))
        return [(document, chunks.get(document.id, [])) for document in documents]

    def remove_unfinished_document(self, document_id: str) -> bool:
        """Delete a document's rows if it is still "indexing" (a finished one is left alone)."""
        with self.engine.begin() as c:
            c.execute(delete(t.chunks).where(t.chunks.c.document_id == document_id,
                                             t.chunks.c.document_id.in_(_unfinished_ids())))
            removed = c.execute(delete(t.documents).where(t.documents.c.id == document_id,
                                                          t.documents.c.state == INDEXING))
            return removed.rowcount > 0

    def ready_chunk_count(self) -> int:
        """Chunks of ready documents: what the chunk collection must hold."""
        with self.engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(t.chunks)
                                .where(t.chunks.c.document_id.in_(_ready_ids()))) or 0)

    def ready_chunk_ids(self) -> set[str]:
        with self.engine.connect() as c:
            return set(c.scalars(select(t.chunks.c.id).where(t.chunks.c.document_id.in_(_ready_ids()))))

    def sample_chunk_ids(self) -> list[str]:
        """Chunk ids of the oldest and the newest ready documents: an index made from another
        database (a restored backup) lacks some of them even when the counts agree."""
        with self.engine.connect() as c:
            return [*c.scalars(_chunk_sample(newest=False)), *c.scalars(_chunk_sample(newest=True))]

    def sample_task_ids(self) -> list[str]:
        """Ids of the oldest and the newest stored tasks (see `sample_chunk_ids`)."""
        column = t.tasks.c.created_at
        with self.engine.connect() as c:
            return [*c.scalars(select(t.tasks.c.id).order_by(column, t.tasks.c.id).limit(SAMPLE_IDS)),
                    *c.scalars(select(t.tasks.c.id).order_by(column.desc(), t.tasks.c.id).limit(SAMPLE_IDS))]


def _ready_ids() -> Select[tuple[str]]:
    return select(t.documents.c.id).where(t.documents.c.state == READY)


def _unfinished_ids() -> Select[tuple[str]]:
    return select(t.documents.c.id).where(t.documents.c.state == INDEXING)


def _chunk_sample(newest: bool) -> Select[tuple[str]]:
    created = t.documents.c.created_at.desc() if newest else t.documents.c.created_at
    return (select(t.chunks.c.id).join(t.documents, t.documents.c.id == t.chunks.c.document_id)
            .where(t.documents.c.state == READY).order_by(created, t.chunks.c.position).limit(SAMPLE_IDS))
