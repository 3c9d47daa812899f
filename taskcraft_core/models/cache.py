"""A persistent response cache for chat models, so re-runs do not pay twice for the same request.

LangChain's chat models consult `model.cache` (a `BaseCache`) before calling the endpoint, keyed
by the serialized prompt and the model's configuration (never the API key's value). This one
keeps answers in a SQLite file as plain JSON messages, readable from many threads.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration
from pydantic import BaseModel

CACHE_HIT_FLAG = "taskcraft_cache_hit"


def is_cache_hit(message: BaseMessage) -> bool:
    """True for an answer replayed from the cache rather than produced by the endpoint now."""
    return bool(message.response_metadata.get(CACHE_HIT_FLAG))


class SQLiteResponseCache(BaseCache):
    """Chat answers by hash of (prompt, model configuration), in one SQLite table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, generations TEXT NOT NULL)")

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT generations FROM responses WHERE key = ?", (_key(prompt, llm_string),)
            ).fetchone()
        return None if row is None else _generations_from_json(row[0])

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        encoded = _generations_to_json(return_val)
        if encoded is None:
            return  # not every answer is plain data; such an answer is simply not cached
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO responses (key, generations) VALUES (?, ?)",
                (_key(prompt, llm_string), encoded),
            )

    def clear(self, **kwargs: Any) -> None:
        with self._connect() as connection:
            connection.execute("DELETE FROM responses")

    def _connect(self) -> sqlite3.Connection:
        # A connection per operation: sqlite3 connections must not be shared across threads.
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)


def _key(prompt: str, llm_string: str) -> str:
    return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()


def _generations_to_json(generations: Sequence[Any]) -> str | None:
    if not all(isinstance(generation, ChatGeneration) for generation in generations):
        return None
    records = [
        {"message": message_to_dict(generation.message), "generation_info": generation.generation_info}
        for generation in generations
    ]
    try:
        return json.dumps(records, default=_plain)
    except TypeError:
        return None


def _plain(value: Any) -> Any:
    """json.dumps fallback: structured answers carry the parsed pydantic object."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not plain data")


def _generations_from_json(encoded: str) -> list[ChatGeneration]:
    generations = []
    for record in json.loads(encoded):
        message = messages_from_dict([record["message"]])[0]
        message.response_metadata[CACHE_HIT_FLAG] = True
        generations.append(ChatGeneration(message=message, generation_info=record["generation_info"]))
    return generations
