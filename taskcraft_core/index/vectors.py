"""The vector index: Chroma collections of corpus chunks and of tasks.

An index, not a store: everything in it can be rebuilt from the database (`rebuild_chunks`
here, `task_vectors.rebuild_task_index` for tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.api.types import Documents, Embeddable, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings
from pydantic import BaseModel

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import Chunk, Document, Task
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store

CHUNKS = "corpus_chunks"
TASKS = "tasks"
ADD_BATCH = 2000


class Passage(BaseModel):
    """A chunk found by search, with where it sits in its document."""

    chunk_id: str
    document_id: str
    title: str
    text: str
    start: int
    end: int
    page: int
    score: float


@lru_cache(maxsize=1)
def _wordllama() -> Any:
    import wordllama
    from wordllama import WordLlama

    # The wheel carries its weights and tokenizer; pointing cache_dir at the package keeps it offline.
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


class WordLlamaEmbedding(EmbeddingFunction[Documents]):
    """Offline embeddings from wordllama's bundled weights (no download, numpy only)."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        vectors = _wordllama().embed(list(input), norm=True)
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    @staticmethod
    def name() -> str:
        return "taskcraft-wordllama"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> WordLlamaEmbedding:
        return WordLlamaEmbedding()


def make_embedding_function(settings: Settings) -> EmbeddingFunction[Documents]:
    """wordllama by default; OpenAI embeddings when configured with a key."""
    if settings.embeddings == "openai" and settings.openai_api_key:
        from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

        return OpenAIEmbeddingFunction(
            api_key=settings.openai_api_key.get_secret_value(),
            api_base=settings.openai_base_url,
            model_name=settings.embedding_model,
        )
    return WordLlamaEmbedding()


def task_text(task: Task) -> str:
    """What a task is compared by: its question and its answer."""
    answer = task.golden_answer if isinstance(task.golden_answer, str) else "; ".join(task.golden_answer)
    return f"{task.question}\nAnswer: {answer}"


def _chunk_metadata(chunk: Chunk, title: str) -> dict[str, Any]:
    """What search needs besides the text: where the chunk sits and the title of its document."""
    return {"document_id": chunk.document_id, "title": title, "start": chunk.start, "end": chunk.end,
            "page": chunk.page, "position": chunk.position}


def chroma_client(settings: Settings) -> Any:
    """A client of the Chroma server at `settings.chroma_url` (shared by app replicas and workers), or
    of the local directory in the data home (the default)."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlsplit(settings.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise TaskCraftError(f"TASKCRAFT_CHROMA_URL {settings.chroma_url!r} is not an http(s) URL.",
                                 "Give the Chroma server's address, e.g. http://chroma:8000.")
        try:
            return chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                                       ssl=url.scheme == "https", settings=chroma_settings)
        except Exception as error:  # the client checks the server at once and raises plain errors
            raise TaskCraftError(
                f"Cannot reach the Chroma server at {settings.chroma_url}: {error}",
                "Start it (`chroma run --path DIR --port 8000`) or unset TASKCRAFT_CHROMA_URL.") from error
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


class VectorIndex:
    """Chroma collections: in the data home, or on a Chroma server."""

    def __init__(self, client: Any, embedding_function: EmbeddingFunction[Documents]) -> None:
        self.client = client
        self.embedding_function = embedding_function

    @classmethod
    def open(cls, settings: Settings) -> VectorIndex:
        return cls(chroma_client(settings), make_embedding_function(settings))

    @classmethod
    def in_memory(cls, settings: Settings) -> VectorIndex:
        """An index in memory, empty at first: for reading a data home whose folder is read-only."""
        return cls(chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False)),
                   make_embedding_function(settings))

    def collection(self, name: str) -> Any:
        return self.client.get_or_create_collection(
            # Chroma types the parameter for any embeddable (text or images); ours embed text.
            name, embedding_function=cast(EmbeddingFunction[Embeddable], self.embedding_function),
            metadata={"hnsw:space": "cosine"},
        )

    # ---- chunks ---------------------------------------------------------------------------

    def add_chunks(self, document: Document, chunks: Sequence[Chunk]) -> None:
        self._upsert(
            CHUNKS,
            ids=[chunk.id for chunk in chunks],
            texts=[chunk.text for chunk in chunks],
            metadatas=[_chunk_metadata(chunk, document.title) for chunk in chunks],
        )

    def retitle_document(self, document_id: str, title: str) -> None:
        """Give a document's chunks a new title (search results show it) without embedding them again."""
        collection = self.collection(CHUNKS)
        found = collection.get(where={"document_id": document_id}, include=["metadatas"])
        if found["ids"]:
            collection.update(ids=found["ids"], metadatas=[{**meta, "title": title} for meta in found["metadatas"]])

    def delete_document(self, document_id: str) -> None:
        self.collection(CHUNKS).delete(where={"document_id": document_id})

    def search_chunks(self, query: str, k: int = 5, document_ids: Sequence[str] | None = None) -> list[Passage]:
        """The k chunks nearest to the query, best first; optionally within some documents."""
        collection = self.collection(CHUNKS)
        if not query.strip() or collection.count() == 0:
            return []
        where = {"document_id": {"$in": list(document_ids)}} if document_ids else None
        result = collection.query(
            query_texts=[query], n_results=min(k, collection.count()), where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Passage(chunk_id=chunk_id, document_id=meta["document_id"], title=meta["title"], text=text,
                    start=meta["start"], end=meta["end"], page=meta["page"], score=1.0 - distance)
            for chunk_id, text, meta, distance in zip(
                result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0], strict=False
            )
        ]

    def rebuild_chunks(self, store: Store, progress: Callable[[int], None] | None = None) -> int:
        """Drop the chunk collection and fill it again from the database."""
        self._drop(CHUNKS)
        titles = {doc.id: doc.title for doc in store.list_documents()}
        total = 0
        for batch in store.iter_chunks(ADD_BATCH):
            self._upsert(
                CHUNKS,
                ids=[c.id for c in batch],
                texts=[c.text for c in batch],
                metadatas=[_chunk_metadata(c, titles.get(c.document_id, "")) for c in batch],
            )
            total += len(batch)
            if progress:
                progress(total)
        return total

    # ---- helpers --------------------------------------------------------------------------

    def _upsert(self, name: str, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]]) -> None:
        collection = self.collection(name)
        limit = min(ADD_BATCH, self.client.get_max_batch_size())
        for start in range(0, len(ids), limit):
            end = start + limit
            collection.upsert(ids=ids[start:end], documents=texts[start:end], metadatas=metadatas[start:end])

    def _drop(self, name: str) -> None:
        if name in {c.name for c in self.client.list_collections()}:
            self.client.delete_collection(name)

    # ---- task vectors (near-duplicate search) ---------------------------------------------
    # Vectors are stored with a hash of the text they came from instead of the text itself: the
    # database holds the text, and skipping Chroma's document storage halves the indexing time.

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of the texts, one row each (float32)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        matrix = np.asarray(self.embedding_function(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1.0, norms)

    def upsert_task_vectors(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        collection = self.collection(TASKS)
        limit = min(ADD_BATCH * 2, self.client.get_max_batch_size())
        for start in range(0, len(ids), limit):
            end = start + limit
            collection.upsert(ids=list(ids[start:end]), embeddings=vectors[start:end],
                              metadatas=list(metadatas[start:end]))

    def task_vectors(self, ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
        """Stored task vectors with their metadata: of the given ids (those present), or all."""
        collection = self.collection(TASKS)
        found_ids: list[str] = []
        vectors: list[np.ndarray] = []
        metadatas: list[dict[str, Any]] = []
        page = 5000  # below SQLite's limit on query variables
        starts = range(0, len(ids), page) if ids is not None else range(0, collection.count(), page)
        for start in starts:
            if ids is not None:
                got = collection.get(ids=list(ids[start : start + page]), include=["embeddings", "metadatas"])
            else:
                got = collection.get(limit=page, offset=start, include=["embeddings", "metadatas"])
            if got["ids"]:
                found_ids.extend(got["ids"])
                vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
                metadatas.extend(meta or {} for meta in got["metadatas"])
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
        return found_ids, matrix, metadatas

    def nearest_tasks(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """The k stored tasks nearest to a vector, as (id, cosine similarity), best first."""
        collection = self.collection(TASKS)
        count = collection.count()
        if count == 0:
            return []
        result = collection.query(query_embeddings=[vector], n_results=min(k, count), where=where,
                                  include=["distances"])
        return [
            (task_id, 1.0 - distance)
            for task_id, distance in zip(result["ids"][0], result["distances"][0], strict=False)
        ]

    def clear_tasks(self) -> None:
        """Drop the task collection (before refilling it)."""
        self._drop(TASKS)

    def task_ids(self) -> list[str]:
        """Ids of every task in the task collection."""
        collection = self.collection(TASKS)
        page = 5000
        return [task_id for start in range(0, collection.count(), page)
                for task_id in collection.get(limit=page, offset=start, include=[])["ids"]]
