"""compose.yaml runs the services with the commands and variables the tests run them with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from taskcraft_core.settings import ENV_FIELDS
from tests.servers import REPO, WORKER_COMMAND, chroma_run_arguments

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
# What tests/test_queue.py gives worker processes.
TEST_WORKER_VARIABLES = {"TASKCRAFT_DATABASE_URL", "TASKCRAFT_CHROMA_URL", "TASKCRAFT_WORKERS"}


def test_the_services_are_postgres_chroma_app_and_workers() -> None:
    assert set(SERVICES) == {"postgres", "chroma", "app", "worker"}
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2


def test_worker_and_chroma_run_the_commands_the_tests_run() -> None:
    worker = SERVICES["worker"]["command"]
    assert worker[0] == "python" and worker[1:4] == WORKER_COMMAND and worker[4:] == ["--concurrency", "8"]
    chroma = SERVICES["chroma"]["command"]
    assert chroma == ["chroma", *chroma_run_arguments(Path("/chroma"), "0.0.0.0", 8000)]
    assert SERVICES["app"]["command"][:3] == ["streamlit", "run", "app.py"]


def test_app_and_workers_share_one_configuration_of_known_variables() -> None:
    app, worker = SERVICES["app"]["environment"], SERVICES["worker"]["environment"]
    assert app == worker
    assert set(app) <= set(ENV_FIELDS)  # every variable is one the studio reads
    assert TEST_WORKER_VARIABLES <= set(app) and app["TASKCRAFT_WORKERS"] == "queue"
    assert app["TASKCRAFT_CHROMA_URL"] == "http://chroma:8000"  # the chroma service's port
    assert app["TASKCRAFT_DATABASE_URL"].startswith("postgresql+psycopg://taskcraft:taskcraft@postgres:5432/")
