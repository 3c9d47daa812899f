"""TASKCRAFT_CHROMA_URL: the index on a `chroma run` server started by the test gives exactly what the
local Chroma directory gives — ingest and search, the generation run's near-duplicate gate, dedup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest

from taskcraft_core.curate.dedup import find_near_duplicates
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.index.vectors import CHUNKS, TASKS
from taskcraft_core.ingest.pipeline import ingest_locations, sample_corpus_path
from taskcraft_core.runs.service import RunRequest, RunSummary, create_run, execute_run, run_summary
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.servers import chroma_server, free_port

pytestmark = pytest.mark.slow

SAMPLE = sample_corpus_path() / "rv_storm_petrel.md"


@pytest.fixture(scope="module")
def chroma() -> Iterator[str]:
    with chroma_server() as url:
        yield url


def generate_with_a_near_copy(home: Path, chroma_url: str | None, tmp_path: Path) -> tuple[Workspace, RunSummary]:
    """Ingest a document and a near-copy, run the offline engine's atomic stage: the copy's candidates
    meet the gate."""
    near_copy = tmp_path / "petrel_copy.md"
    text = SAMPLE.read_text(encoding="utf-8")
    near_copy.write_text(text.replace("small seabird", "little seabird"), encoding="utf-8")
    workspace = Workspace.open(Settings(home=home, chroma_url=chroma_url))
    report = ingest_locations([str(SAMPLE), str(near_copy)], workspace)
    assert report.documents_added == 2
    run = execute_run(workspace, create_run(workspace, RunRequest(kinds=["atomic"], engine="offline")).id)
    assert run.status == "completed"
    return workspace, run_summary(run)


def test_ingest_gate_and_dedup_on_the_chroma_server_match_the_local_directory(chroma: str, tmp_path: Path) -> None:
    local, local_summary = generate_with_a_near_copy(tmp_path / "local", None, tmp_path)
    remote, remote_summary = generate_with_a_near_copy(tmp_path / "remote", chroma, tmp_path)
    assert not (tmp_path / "remote" / "chroma").exists()  # nothing written beside the server

    server = chromadb.HttpClient(host="127.0.0.1", port=int(chroma.rsplit(":", 1)[1]))
    chunk_count = sum(len(remote.store.get_chunks(d.id)) for d in remote.store.list_documents())
    assert server.get_collection(CHUNKS).count() == chunk_count
    assert server.get_collection(TASKS).count() == local.index.collection(TASKS).count() > 0

    query = "When was the research vessel launched?"
    assert [p.chunk_id for p in remote.index.search_chunks(query, k=3)] == \
        [p.chunk_id for p in local.index.search_chunks(query, k=3)]
    # The gate saw the copy's candidates as near-duplicates of the original's, on the server as locally.
    assert remote_summary.by_kind["atomic"].duplicates > 0
    assert remote_summary.model_copy(update={"run_id": ""}) == local_summary.model_copy(update={"run_id": ""})
    remote_clusters = sorted(sorted(c.task_ids) for c in find_near_duplicates(remote))
    assert remote_clusters and remote_clusters == sorted(sorted(c.task_ids) for c in find_near_duplicates(local))


def test_an_unreachable_or_malformed_chroma_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TaskCraftError, match=r"Cannot reach the Chroma server at http://127\.0\.0\.1:\d+"):
        Workspace.open(Settings(home=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TaskCraftError, match="is not an http"):
        Workspace.open(Settings(home=tmp_path, chroma_url="chroma:8000"))
