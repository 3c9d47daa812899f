"""The same store on a real PostgreSQL server, started for the test in tmp_path."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskcraft_core.errors import ReviewConflict
from taskcraft_core.store import Store, TaskFilter
from tests.test_store import make_task

pytestmark = pytest.mark.slow


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres_url() -> Iterator[str]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs it")
        pytest.skip("PostgreSQL server binaries not installed")
    # Not tmp_path: its parents are private to root, and the server may run as another user.
    root = Path(tempfile.mkdtemp(prefix="taskcraft-pg-"))
    data, sockets, port = root / "pg", root / "sock", _free_port()
    data.mkdir()
    sockets.mkdir()
    # initdb refuses to run as root, so the server runs as the postgres user when we are root.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        for path in (root, data, sockets):
            shutil.chown(path, "postgres")
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=60)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-o",
        f"-p {port} -k {sockets} -h ''",
        "start",
    )
    try:
        run(str(bin_dir / "createdb"), "-h", str(sockets), "-p", str(port), "-U", "postgres", "taskcraft")
        yield f"postgresql+psycopg://postgres@/taskcraft?host={sockets}&port={port}"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_store_works_on_postgresql(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.add_tasks([make_task(i, kind="depth" if i % 2 else "atomic") for i in range(10)])
    assert store.count_tasks(TaskFilter(kinds=["depth"])) == 5
    assert store.count_tasks(TaskFilter(text="QUESTION 3")) == 1
    first = store.record_review("t003", "ann", "accept")
    with pytest.raises(ReviewConflict):
        store.record_review("t003", "bob", "reject", expected_latest=None)
    store.record_review("t003", "ann", "undo", expected_latest=first.id)
    task = Store(postgres_url).get_task("t003")
    assert task is not None and task.status == "pending"
    assert [s.observation for s in task.trajectory] == [None, "obs 3"]
