"""Generation runs: work units, the executor, progress, cancel and resume."""
