"""How a run draws its work across documents: round-robin, so a run stopped by `--limit` has tasks
from many documents, not all from the first one (each document's own order is kept)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, zip_longest
from typing import TypeVar

Unit = TypeVar("Unit")
_GAP = object()


def round_robin(per_document: Sequence[Sequence[Unit]]) -> list[Unit]:
    """The first unit of every document, then the second of every document, and so on."""
    rounds = zip_longest(*per_document, fillvalue=_GAP)
    return [unit for unit in chain.from_iterable(rounds) if unit is not _GAP]  # type: ignore[misc]
