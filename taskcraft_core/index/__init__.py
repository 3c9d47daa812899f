"""The vector index: Chroma collections of chunks and task vectors, rebuildable from the database."""
