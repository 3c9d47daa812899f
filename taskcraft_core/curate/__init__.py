"""Curation after generation: the review queue, near-duplicates, insights, export and import."""
