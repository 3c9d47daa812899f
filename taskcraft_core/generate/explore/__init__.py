"""Exploration mode (METHOD §2, after AutoPlay): walk a linked collection, remember, write tasks."""
