"""Chunking that keeps exact offsets: `document.text[chunk.start:chunk.end] == chunk.text`."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator

from langchain_text_splitters import RecursiveCharacterTextSplitter

from taskcraft_core.ingest.loaders import SEPARATORS
from taskcraft_core.schema import Chunk, Document


def chunk_document(document: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Chunks whose [start, end) offsets cut exactly their text out of document.text."""
    overlap = min(chunk_overlap, chunk_size // 2)
    return [
        Chunk(
            id=f"{document.id}:{position}",
            document_id=document.id,
            position=position,
            text=document.text[start:end],
            page=bisect_right(document.page_offsets, start),
            start=start,
            end=end,
        )
        for position, (start, end) in enumerate(_chunk_spans(document.text, chunk_size, overlap))
    ]


def _chunk_spans(text: str, chunk_size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """[start, end) of each chunk, in order: separator-free runs are cut directly, the rest is split.

    The splitter's last resort cuts a run without separators into single characters and merges them
    back one by one, which takes seconds per megabyte; cutting such runs here takes microseconds.
    """
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=overlap, separators=SEPARATORS)
    # Runs that only "" would cut: the splitter recurses on pieces of chunk_size or more, a run with the
    # separator kept before it (at most 2 characters). Matched only from a run's start: linear time.
    long_run = re.compile(f"(?<![^\n ])[^\n ]{{{chunk_size - 2},}}")
    position = 0
    for run in long_run.finditer(text):
        yield from _split_spans(splitter, text, position, run.start(), overlap)
        yield from _cut_spans(run.start(), run.end(), chunk_size, overlap)
        position = run.end()
    yield from _split_spans(splitter, text, position, len(text), overlap)


def _split_spans(
    splitter: RecursiveCharacterTextSplitter, text: str, start: int, end: int, overlap: int
) -> Iterator[tuple[int, int]]:
    search_from = start
    for piece in splitter.split_text(text[start:end]):
        found = text.find(piece, search_from, end)
        yield found, found + len(piece)
        # A chunk shares at most `overlap` characters with the one before and starts after its start;
        # searching from there finds its real place even in text that repeats itself.
        search_from = max(found + 1, found + len(piece) - overlap)


def _cut_spans(start: int, end: int, chunk_size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Pieces of chunk_size characters sharing `overlap` with the previous one, the last ending at `end`."""
    while True:
        stop = min(start + chunk_size, end)
        yield start, stop
        if stop == end:
            return
        start = stop - overlap
