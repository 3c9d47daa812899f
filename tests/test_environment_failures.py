"""Environment failures end in one clear message naming the file and what to do, and exit code 3:
a truncated or foreign database file, a read-only data home, a read-only Chroma folder, a full disk.
Reading commands (`runs`, `export`) work on a read-only home (issue 16, items 3 and 4).

Root ignores file permissions, so "read-only" here is real: a read-only bind mount (`mount --bind`
then `remount,ro`), which refuses writes to root too; the full disk is a small tmpfs. Both need root
with mount rights; elsewhere those tests are skipped with the reason."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from taskcraft_core.cli import EXIT_ENVIRONMENT, main
from taskcraft_core.index.consistency import check_index
from taskcraft_core.ingest.pipeline import sample_corpus_path
from taskcraft_core.runs.service import RunRequest, create_run, execute_run
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.test_run_method import sample_workspace

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
# Prints [documents listed, titles of listed documents with a chunk missing from the index].
LISTED_WITHOUT_VECTORS = """
import json, sys
from pathlib import Path
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
workspace = Workspace.open(Settings(home=Path(sys.argv[1])))
indexed = set(workspace.index.collection("corpus_chunks").get(include=[])["ids"])
listed = workspace.store.list_documents()
print(json.dumps([len(listed), [d.title for d in listed
                                if not {c.id for c in workspace.store.get_chunks(d.id)} <= indexed]]))
"""


def cli_process(home: Path, *args: str) -> Outcome:
    """The CLI in its own process, as an operator runs it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TASKCRAFT_", "OPENAI_"))}
    done = subprocess.run([sys.executable, "-m", "taskcraft_core", *args], cwd=REPO, capture_output=True, text=True,
                          env=env | {"TASKCRAFT_HOME": str(home)}, timeout=300)
    return Outcome(done.returncode, done.stdout, done.stderr)


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """The CLI's `main` in this process (what `python -m taskcraft_core` runs), on a given home."""

    def run(home: Path, *args: str) -> Outcome:
        monkeypatch.setenv("TASKCRAFT_HOME", str(home))
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


def assert_one_clear_message(result: Outcome, *expected: str) -> None:
    assert result.returncode == EXIT_ENVIRONMENT, result.stderr
    assert "Traceback" not in result.stderr
    # Besides notes and logged warnings (what was left to finish on the next open), one message.
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("note: ", "WARNING:"))]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("what to do: "), lines
    for words in expected:
        assert words in result.stderr


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a folder read-only for everyone, root included: a read-only bind mount over itself."""
    if os.geteuid() != 0:
        pytest.skip("needs root to bind-mount a folder read-only")
    try:
        _mount("--bind", str(path), str(path))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot bind-mount here ({error})")
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield
    finally:
        # Lazily: database and Chroma handles this process still holds keep the mount busy.
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    path.mkdir(parents=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        pytest.skip(f"cannot mount a tmpfs here ({error})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.fixture(scope="module")
def generated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home with the sample corpus and one small run (copied by tests that damage it)."""
    home = tmp_path_factory.mktemp("generated") / "home"
    workspace = sample_workspace(home)
    execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], engine="offline", limit=2)).id)
    with workspace.store.engine.connect() as connection:  # everything into the main file, as after a clean exit
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    workspace.store.engine.dispose()
    return home


def copy_of(home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    subprocess.run(["cp", "-a", str(home), str(target)], check=True)
    return target


# ---- a damaged database ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "not a database"])
def test_a_damaged_database_is_named_with_what_to_do_and_exit_3(generated_home: Path, tmp_path: Path,
                                                                 damage: str, cli: Callable[..., Outcome]) -> None:
    home = copy_of(generated_home, tmp_path)
    database = home / "taskcraft.sqlite"
    if damage == "truncated":
        os.truncate(database, database.stat().st_size // 2)
    else:
        database.write_bytes(b"these are not the pages of a database " * 200)
    for command in (["runs"], ["generate", "--engine", "offline", "--kinds", "atomic", "--limit", "1"]):
        assert_one_clear_message(cli(home, *command), f"The database file {database} is damaged",
                                 "Restore it from a backup")


def test_the_home_page_shows_the_damaged_database_message_not_an_exception(
    generated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = copy_of(generated_home, tmp_path)
    database = home / "taskcraft.sqlite"
    os.truncate(database, database.stat().st_size // 2)
    monkeypatch.setenv("TASKCRAFT_HOME", str(home))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception, at.exception
    # Shown as Markdown, with its punctuation escaped.
    assert [error.value.replace("\\", "") for error in at.error] == [
        f"The database file {database} is damaged (database disk image is malformed)."]
    assert "Restore it from a backup" in at.info[0].value


# ---- a read-only data home ---------------------------------------------------------------------------


def test_reading_commands_work_on_a_read_only_home_and_writing_ones_say_why_not(
    generated_home: Path, tmp_path: Path, cli: Callable[..., Outcome],
) -> None:
    home = copy_of(generated_home, tmp_path)
    out = tmp_path / "export" / "tasks.jsonl"
    out.parent.mkdir()
    [run] = Workspace.open(Settings(home=home)).store.list_runs()
    tasks = Workspace.open(Settings(home=home)).store.count_tasks()
    with read_only(home):
        listed = cli(home, "runs", "--json")
        exported = cli(home, "export", "--status", "all", "--out", str(out), "--drop-duplicates", "--json")
        generate = cli(home, "generate", "--engine", "offline", "--kinds", "atomic", "--limit", "1")
        ingest = cli(home, "ingest", str(sample_corpus_path() / "ada_merrow.md"))
    assert listed.returncode == 0, listed.stderr
    assert [(entry["run_id"], entry["status"]) for entry in json.loads(listed.stdout)] == [(run.id, "completed")]
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["count"] == tasks == len(out.read_text().splitlines()) > 0
    for refused in (generate, ingest):  # the database or the index, whichever was written first
        assert_one_clear_message(refused, f"Cannot write {home}/", "read-only", "Fix the permissions")


def test_a_read_only_chroma_folder_is_named_and_reading_still_works(generated_home: Path, tmp_path: Path,
                                                                   cli: Callable[..., Outcome]) -> None:
    home = copy_of(generated_home, tmp_path)
    with read_only(home / "chroma"):
        generate = cli(home, "generate", "--engine", "offline", "--kinds", "atomic", "--limit", "1")
        listed = cli(home, "runs")
    assert_one_clear_message(generate, f"Cannot write {home / 'chroma'}", "Fix the permissions")
    assert listed.returncode == 0 and " completed " in listed.stdout


# ---- a full disk -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ingest_on_a_full_disk_says_so_keeps_no_half_document_and_completes_once_space_is_freed(
    tmp_path: Path,
) -> None:
    """The disk fills while the corpus is ingested: wherever the write fails (database, Chroma, the
    cleanup), no document is listed without all its vectors, and the next ingest completes."""
    corpus = sample_corpus_path()
    with small_disk(tmp_path / "disk", "8m") as disk:
        home = disk / "home"
        assert cli_process(home, "ingest", str(corpus / "ada_merrow.md")).returncode == 0
        filler = disk / "filler"
        # Leave about 200 kB: the next documents' rows fit, their vectors do not.
        with filler.open("wb") as sink:
            sink.write(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 200_000))
        full = cli_process(home, "ingest", str(corpus), "--json")
        assert_one_clear_message(full, "is full", "Free some space")
        filler.unlink()
        # Looked at in another process (as it was left, before any open repairs it): what is listed is whole.
        listed, incomplete = json.loads(subprocess.run(
            [sys.executable, "-c", LISTED_WITHOUT_VECTORS, str(home)], capture_output=True, text=True, check=True,
            cwd=REPO).stdout)
        assert 0 < listed < 6 and incomplete == []
        again = cli_process(home, "ingest", str(corpus), "--json")
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        assert report["documents_added"] + report["documents_skipped"] == 6 and report["errors"] == []
        reopened = Workspace.open(Settings(home=home))
        assert len(reopened.store.list_documents()) == 6 and reopened.store.unfinished_documents() == []
        assert all(check.in_step for check in check_index(reopened))
