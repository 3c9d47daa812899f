"""Small documents for generation tests, stored with the real chunker, SQLite store and Chroma index."""

from __future__ import annotations

from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import load_document
from taskcraft_core.schema import Document
from taskcraft_core.workspace import Workspace

LIGHTHOUSE = """# Brenna Light

The Brenna Light is a lighthouse on the north cape of Skerry Island. It was first lit on 14 March 1871.
The tower is 38 metres tall and its lamp can be seen from 22 nautical miles away.
Its first keeper was Jonas Vell, who kept the light until 1902.
"""
GUIDE = """# Coast Guide

Many ships pass the cape every year. The Brenna Light, painted with red bands, guards the entrance of the Skerry Sound.
"""
NO_FACTS = """# Musings

the sea was calm and grey. nothing much happened that day, or the next one, as far as anyone remembers.
"""


def add_document(workspace: Workspace, name: str, text: str) -> Document:
    """Store a Markdown text as a document with its chunks, and index the chunks."""
    document = load_document(name, text.encode(), "markdown")
    chunks = chunk_document(document, workspace.settings.chunk_size, workspace.settings.chunk_overlap)
    workspace.store.add_document(document, chunks)
    workspace.index.add_chunks(document, chunks)
    return document
