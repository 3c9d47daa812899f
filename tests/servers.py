"""Real servers a test starts for itself on 127.0.0.1: PostgreSQL (Debian's binaries), the Chroma server
(`chroma run`, shipped in the chromadb wheel), and studio processes (`python -m taskcraft_core ...`)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    return Path(found).resolve().parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server with one database `taskcraft`; yields its SQLAlchemy URL."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs it")
        pytest.skip("PostgreSQL server binaries not installed")
    # Not tmp_path: its parents are private to root, and the server may run as another user.
    root = Path(tempfile.mkdtemp(prefix="taskcraft-pg-"))
    data, sockets, port = root / "pg", root / "sock", free_port()
    data.mkdir()
    sockets.mkdir()
    # initdb refuses to run as root, so the server runs as the postgres user when we are root.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        for path in (root, data, sockets):
            shutil.chown(path, "postgres")

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=60)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    # Listening on 127.0.0.1 too, so that processes reach it the way a team's machines would.
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
        "-o", f"-p {port} -k {sockets} -h 127.0.0.1 -c max_connections=200", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", str(sockets), "-p", str(port), "-U", "postgres", "taskcraft")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/taskcraft"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new empty database on the same server (tests sharing a server share no data)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def chroma_executable() -> str:
    return shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")


def chroma_run_arguments(path: Path, host: str, port: int) -> list[str]:
    """The Chroma server's command line after `chroma` (compose.yaml runs the same)."""
    return ["run", "--path", str(path), "--host", host, "--port", str(port)]


WORKER_COMMAND = ["-m", "taskcraft_core", "worker"]  # after the Python executable (compose.yaml runs the same)


@contextmanager
def chroma_server() -> Iterator[str]:
    """`chroma run` on a free port with its data in a temporary directory; yields its URL."""
    root = Path(tempfile.mkdtemp(prefix="taskcraft-chroma-"))
    port = free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen([chroma_executable(), *chroma_run_arguments(root / "data", "127.0.0.1", port)],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/api/v2/heartbeat") or process.poll() is not None, 60, "chroma run")
        if process.poll() is not None:
            raise AssertionError(f"chroma run exited: {(root / 'server.log').read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def studio_env(home: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The environment of a studio process: this one's, without any TASKCRAFT_/OPENAI_ variable, plus values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCRAFT_", "OPENAI_"))}
    return env | {"TASKCRAFT_HOME": str(home), "PYTHONPATH": str(REPO)} | dict(values)


def start_worker(home: Path, env: Mapping[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`python -m taskcraft_core worker ARGS` in its own process group (so a test can kill -9 it alone)."""
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "worker.log").open("wb")
    return subprocess.Popen([sys.executable, *WORKER_COMMAND, *args], cwd=REPO,
                            env=studio_env(home, env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 60) -> int:
    """Send a signal to a process this test started, wait for it and return its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
