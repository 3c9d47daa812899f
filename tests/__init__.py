"""Test suite: tests/test_*.py, with the test doubles beside them (stub OpenAI server, scripted models)."""
