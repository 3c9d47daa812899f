"""The ingestion pipeline with a real SQLite store and a real Chroma index in tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from taskcraft_core.cli import main
from taskcraft_core.index.vectors import CHUNKS
from taskcraft_core.ingest import pipeline as ingest_module
from taskcraft_core.ingest.pipeline import (
    IngestReport,
    Source,
    delete_document,
    ingest_locations,
    ingest_sources,
    load_sample_corpus,
    reindex,
    sample_corpus_path,
)
from taskcraft_core.schema import content_id
from taskcraft_core.workspace import Workspace
from tests.local_http import closed_port, local_server

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = "notes.md"
SAMPLE_TITLES = {
    "The Halvard Observatory",
    "Instruments of the Halvard Observatory",
    "Ada Merrow",
    "RV Storm Petrel",
    "A Timeline of Kestrel Haven Science",
    "The Skerry Deep Expedition of 1964",
}




def with_settings(workspace: Workspace, **changes: Any) -> Workspace:
    return Workspace(workspace.settings.with_changes(**changes), workspace.store, workspace.index)


def fixture(name: str) -> Source:
    return Source.from_path(FIXTURES / name)


def errors_by_source(report: IngestReport) -> dict[str, str]:
    return {failure.source: failure.error for failure in report.errors}


def stored_sources(workspace: Workspace) -> list[str]:
    return sorted(doc.source for doc in workspace.store.list_documents())


@pytest.mark.parametrize(
    ("bad", "changes", "error"),
    [
        ("corrupt.pdf", {}, "corrupt.pdf: the PDF is corrupt or not a PDF"),
        ("encrypted.pdf", {}, "encrypted.pdf: the PDF is encrypted and no password was given"),
        ("drawing_only.pdf", {}, "drawing_only.pdf: the PDF has no extractable text"),
        ("empty.txt", {}, "empty.txt: the file is empty"),
        ("binary.txt", {}, "binary.txt: looks like binary data, not text"),
        (
            "report.pdf",
            {"max_file_bytes": 2000},
            "report.pdf: the file is 6.3 kB, over the 2.0 kB limit (max_file_bytes)",
        ),
        (
            "zip_bomb.zip",
            {"zip_max_total_bytes": 1_000_000},
            "zip_bomb.zip: the archive declares 10.0 MB uncompressed, over the 1.0 MB limit (zip_max_total_bytes); "
            "it looks like a zip bomb",
        ),
        (
            "escape.zip",
            {"zip_max_entries": 1},
            "escape.zip: the archive has 2 entries, over the limit of 1 (zip_max_entries)",
        ),
    ],
)
def test_a_bad_file_is_one_clear_error_and_the_batch_goes_on(
    workspace: Workspace, bad: str, changes: dict[str, Any], error: str
) -> None:
    report = ingest_sources([fixture(bad), fixture(GOOD)], with_settings(workspace, **changes))
    assert [failure.source for failure in report.errors] == [bad]
    assert report.errors[0].error.startswith(error)
    assert (report.documents_added, report.documents_skipped) == (1, 0)
    assert stored_sources(workspace) == [GOOD]


def test_good_files_of_every_type_become_documents_and_chunks(workspace: Workspace) -> None:
    names = ["report.pdf", "script.html", "latin1.txt", GOOD]
    report = ingest_sources([fixture(name) for name in names], workspace)
    assert (report.documents_added, report.errors) == (4, [])
    summaries = {doc.source: doc for doc in workspace.store.list_documents()}
    assert sorted(summaries) == sorted(names)
    assert report.chunks_added == sum(doc.chunk_count for doc in summaries.values())
    assert summaries["report.pdf"].title == "Gull Point Weather Report 1968"
    assert summaries["report.pdf"].pages == 3
    assert workspace.index.collection(CHUNKS).count() == report.chunks_added
    html = workspace.store.get_document(summaries["script.html"].id)
    assert "alert" not in html.text and "onclick" not in html.text and "steal" not in html.text
    assert html.links == ["index.html", "lantern_path.html"]
    assert "Le caf\u00e9 du port" in workspace.store.get_document(summaries["latin1.txt"].id).text


def test_zip_members_are_documents_and_an_escaping_path_is_refused(workspace: Workspace) -> None:
    report = ingest_sources([fixture("escape.zip")], workspace)
    assert errors_by_source(report) == {
        "escape.zip/../evil.txt": "escape.zip/../evil.txt: the path escapes the archive's folder; member refused"
    }
    assert stored_sources(workspace) == ["escape.zip/docs/good.md"]
    assert workspace.store.list_documents()[0].title == "Good Member"


def lying_zip(real_size: int, declared_size: int) -> bytes:
    """A zip whose headers declare a smaller uncompressed size than the member really has."""
    data = bytearray(zip_of({"zeros.txt": b"0" * real_size, "fine.md": b"# Fine\n\nThe quay is 640 metres long.\n"}))
    real = struct.pack("<I", real_size)
    for offset in (data.find(b"PK\x03\x04") + 22, data.find(b"PK\x01\x02") + 24):
        assert data[offset : offset + 4] == real
        data[offset : offset + 4] = struct.pack("<I", declared_size)
    return bytes(data)


def test_a_member_larger_than_it_declares_is_refused_and_never_fully_read(workspace: Workspace) -> None:
    source = Source(name="liar.zip", data=lying_zip(real_size=5_000_000, declared_size=100))
    report = ingest_sources([source], with_settings(workspace, zip_max_total_bytes=1000))
    assert errors_by_source(report)["liar.zip/zeros.txt"].startswith(
        "liar.zip/zeros.txt: the archive member is corrupt (Bad CRC-32"
    )
    assert stored_sources(workspace) == ["liar.zip/fine.md"]


def test_zip_bomb_is_refused_by_its_ratio_with_default_settings_and_good_members_stay(workspace: Workspace) -> None:
    report = ingest_sources([fixture("zip_bomb.zip")], workspace)  # timed by bench.bench_ingest
    assert errors_by_source(report) == {
        "zip_bomb.zip/zeros.txt": "zip_bomb.zip/zeros.txt: the member would expand 9.7 kB to 10.0 MB, a compression "
        "ratio of 1027:1, over the limit of 100:1 (ZIP_MAX_RATIO); it looks like a zip bomb and was not expanded "
        "(if you trust it, extract it and ingest the file itself)"
    }
    assert stored_sources(workspace) == ["zip_bomb.zip/small.md"]


def test_a_bomb_declaring_a_huge_compressed_size_is_measured_against_the_archive(workspace: Workspace) -> None:
    data = bytearray((FIXTURES / "zip_bomb.zip").read_bytes())
    for header, field in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):  # compressed size of the first member
        offset = data.find(header) + field
        data[offset : offset + 4] = struct.pack("<I", 9_000_000)
    report = ingest_sources([Source(name="liar.zip", data=bytes(data))], workspace)
    assert errors_by_source(report)["liar.zip/zeros.txt"].startswith(
        f"liar.zip/zeros.txt: the member would expand {len(data) / 1000:.1f} kB to 10.0 MB, a compression ratio "
        f"of {10_000_000 // len(data)}:1"
    )
    assert stored_sources(workspace) == ["liar.zip/small.md"]


def test_same_content_is_skipped_by_hash_and_ids_follow_content(workspace: Workspace) -> None:
    first = ingest_sources([fixture(GOOD)], workspace)
    again = ingest_sources([Source(name="copy.md", data=(FIXTURES / GOOD).read_bytes())], workspace)
    assert (again.documents_added, again.documents_skipped, again.chunks_added) == (0, 1, 0)
    assert again.document_ids == first.document_ids
    document = workspace.store.get_document(first.document_ids[0])
    assert document.content_hash == hashlib.sha256(document.text.encode()).hexdigest()
    assert document.id == content_id(document.content_hash)
    assert [chunk.id for chunk in workspace.store.get_chunks(document.id)] == [f"{document.id}:0"]


def test_stored_chunks_are_exact_slices_with_pages(workspace: Workspace) -> None:
    report = ingest_sources([fixture("report.pdf")], with_settings(workspace, chunk_size=300, chunk_overlap=50))
    document = workspace.store.get_document(report.document_ids[0])
    chunks = workspace.store.get_chunks(document.id)
    assert len(chunks) == report.chunks_added > 3
    assert all(document.text[c.start : c.end] == c.text for c in chunks)
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    assert chunks[-1].page == 3


def test_uploads_are_kept_by_content_hash(workspace: Workspace) -> None:
    data = (FIXTURES / "encrypted.pdf").read_bytes()
    ingest_sources([fixture("encrypted.pdf"), fixture(GOOD)], workspace)
    kept = sorted(path.name for path in workspace.settings.uploads_path.iterdir())
    expected = [hashlib.sha256(data).hexdigest() + ".pdf",
                hashlib.sha256((FIXTURES / GOOD).read_bytes()).hexdigest() + ".md"]
    assert kept == sorted(expected)


def test_progress_is_reported_per_source(workspace: Workspace) -> None:
    calls: list[tuple[int, int, str]] = []
    ingest_sources([fixture(GOOD), fixture("empty.txt")], workspace, lambda *call: calls.append(call))
    assert calls == [(1, 2, GOOD), (2, 2, "empty.txt")]


def test_a_failing_index_leaves_no_half_document(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(workspace.index, "add_chunks", broken)
    report = ingest_sources([fixture(GOOD)], workspace)
    assert report.errors[0].error == "notes.md: unexpected error (RuntimeError: disk full)"
    assert workspace.store.list_documents() == []


def test_an_unexpected_error_in_one_member_spares_the_others(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = ingest_module.load_document

    def flaky(name: str, *args: Any) -> Any:
        if name.endswith("first.md"):
            raise ValueError("loader bug")
        return real_load(name, *args)

    monkeypatch.setattr(ingest_module, "load_document", flaky)
    archive = zip_of({"first.md": b"# First\n\nOne.\n", "second.md": b"# Second\n\nTwo.\n"})
    report = ingest_sources([Source(name="pair.zip", data=archive)], workspace)
    assert errors_by_source(report) == {
        "pair.zip/first.md": "pair.zip/first.md: unexpected error (ValueError: loader bug)"}
    assert stored_sources(workspace) == ["pair.zip/second.md"]


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_delete_document_removes_it_from_store_and_index(workspace: Workspace) -> None:
    report = ingest_sources([fixture(GOOD), fixture("latin1.txt")], workspace)
    notes_id = report.document_ids[0]
    assert delete_document(workspace, notes_id) is True
    assert workspace.store.get_document(notes_id) is None
    found = workspace.index.search_chunks("North Quay 640 metres", k=5)
    assert [passage.document_id for passage in found] == [report.document_ids[1]]
    assert delete_document(workspace, notes_id) is False


def test_reindex_rebuilds_the_chunk_collection(workspace: Workspace) -> None:
    report = ingest_sources([fixture(GOOD), fixture("report.pdf")], workspace)
    workspace.index.client.delete_collection(CHUNKS)
    assert reindex(workspace) == report.chunks_added
    assert workspace.index.collection(CHUNKS).count() == report.chunks_added
    assert workspace.index.search_chunks("North Quay length", k=1)[0].title == "Harbour Notes"


def mixed_folder(tmp_path: Path) -> Path:
    """Two documents beside files of types we do not read, as a project folder holds them."""
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.md").write_text("# Alpha\n\nAlpha has 3 masts.\n")
    (folder / "b.txt").write_text("Beta has 4 masts.\n")
    (folder / ".hidden.txt").write_text("never read")
    (folder / "slides.pptx").write_bytes(b"PK")
    (folder / "sub" / "tool.py").write_text("print('hi')\n")
    (folder / "sub" / "rows.jsonl").write_text('{"a": 1}\n')
    return folder


def test_locations_walk_directories_skip_unsupported_files_and_report_missing_paths(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = mixed_folder(tmp_path)
    locations = [str(folder), str(tmp_path / "nope.pdf"), "ftp://example.org/x.txt", str(folder / "slides.pptx")]
    report = ingest_locations(locations, workspace)
    assert stored_sources(workspace) == ["corpus/b.txt", "corpus/sub/a.md"]
    assert report.unsupported_skipped == ["corpus/slides.pptx", "corpus/sub/rows.jsonl", "corpus/sub/tool.py"]
    assert errors_by_source(report) == {
        str(tmp_path / "nope.pdf"): f"{tmp_path / 'nope.pdf'}: no such file or directory",
        "ftp://example.org/x.txt": "ftp://example.org/x.txt: only http and https URLs can be fetched",
        "slides.pptx": "slides.pptx: unsupported file type '.pptx' (supported: .htm, .html, "
        ".markdown, .md, .pdf, .text, .txt, .xhtml and .zip archives of those)",
    }


def test_cli_ingest_of_a_directory_skips_unsupported_files_but_not_a_named_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "cli_home"))
    folder = mixed_folder(tmp_path)
    assert main(["ingest", "--json", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "documents_added": 2, "documents_skipped": 0, "chunks_added": 2, "errors": [],
    }
    assert main(["ingest", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "0 documents added (0 chunks), 2 already present, 0 failed",
        "  skipped 3 files of unsupported types: corpus/slides.pptx, corpus/sub/rows.jsonl, corpus/sub/tool.py",
    ]
    assert main(["ingest", "--json", str(folder / "sub" / "tool.py")]) == 2
    assert json.loads(capsys.readouterr().out)["errors"] == [
        {"source": "tool.py", "error": "tool.py: unsupported file type '.py' (supported: .htm, .html, .markdown, "
         ".md, .pdf, .text, .txt, .xhtml and .zip archives of those)"}
    ]


def test_oversized_file_on_disk_is_refused_unread(workspace: Workspace) -> None:
    report = ingest_locations([str(FIXTURES / "report.pdf")], with_settings(workspace, max_file_bytes=1000))
    assert report.errors[0].error.startswith("report.pdf: the file is 6.3 kB, over the 1.0 kB limit")


def test_urls_are_guarded_and_fetched_when_private_addresses_are_allowed(workspace: Workspace) -> None:
    with local_server() as base:
        refused = ingest_locations([f"{base}/page.html"], workspace)
        assert refused.errors[0].error.startswith(
            f"{base}/page.html: the host 127.0.0.1 resolves to 127.0.0.1, a loopback address"
        )
        allowed = with_settings(workspace, allow_private_urls=True, url_max_bytes=1000)
        report = ingest_locations([f"{base}/page.html", f"{base}/image.png", f"{base}/big.txt"], allowed)
    assert report.documents_added == 1
    assert errors_by_source(report) == {
        f"{base}/image.png": f"{base}/image.png: unsupported content type 'image/png' (supported: "
        "application/pdf, application/xhtml+xml, text/html, text/markdown, text/plain, text/x-markdown)",
        f"{base}/big.txt": f"{base}/big.txt: the response is larger than the 1.0 kB limit (url_max_bytes) "
        "(raise url_max_bytes to accept larger responses)",
    }
    document = workspace.store.get_document(report.document_ids[0])
    assert (document.source, document.title, document.doc_type) == (f"{base}/page.html", "Harbour Office", "html")
    assert document.links == [f"{base}/", f"{base}/tides.html"]


def test_unreachable_url_is_one_error(workspace: Workspace) -> None:
    url = f"http://127.0.0.1:{closed_port()}/page.html"
    report = ingest_locations([url, str(FIXTURES / GOOD)], with_settings(workspace, allow_private_urls=True))
    assert report.errors[0].error.startswith(f"{url}: could not connect to 127.0.0.1")
    assert report.documents_added == 1


def test_sample_corpus_loads_once_with_linked_titled_documents(workspace: Workspace) -> None:
    report = load_sample_corpus(workspace)
    assert (report.documents_added, report.errors) == (6, [])
    documents = {doc.title: doc for doc in workspace.store.list_documents()}
    assert set(documents) == SAMPLE_TITLES
    assert documents["The Skerry Deep Expedition of 1964"].pages == 2
    observatory = workspace.store.get_document(documents["The Halvard Observatory"].id)
    assert "instruments.html" in observatory.links
    instruments = workspace.store.get_document(documents["Instruments of the Halvard Observatory"].id)
    assert "halvard_observatory.html" in instruments.links
    assert observatory.source == "sample_corpus/halvard_observatory.html"
    again = load_sample_corpus(workspace)
    assert (again.documents_added, again.documents_skipped) == (0, 6)


def test_sample_corpus_documents_are_long_enough_and_mention_each_other() -> None:
    texts = {path.name: " ".join(path.read_text().split())
             for path in sample_corpus_path().iterdir() if path.suffix != ".pdf"}
    for name, text in texts.items():
        assert len(text.split()) >= 380, name
    assert "The observatory founded by Ada Merrow in 1931 is the Halvard Observatory." in texts["ada_merrow.md"]


def test_cli_ingest_json_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "cli_home"))
    assert main(["ingest", "--json", str(FIXTURES / GOOD), str(FIXTURES / "empty.txt")]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert printed == {
        "documents_added": 1, "documents_skipped": 0, "chunks_added": 1,
        "errors": [{"source": "empty.txt", "error": "empty.txt: the file is empty (nothing to ingest)"}],
    }
    assert main(["ingest", str(FIXTURES / GOOD)]) == 0
    assert capsys.readouterr().out == (
        f"[1/1] {GOOD}\n0 documents added (0 chunks), 1 already present, 0 failed\n"
    )
    assert main(["ingest"]) == 1
    assert "name at least one file" in capsys.readouterr().err
    assert main(["reindex"]) == 0
    assert capsys.readouterr().out == "reindexed 1 chunks and 0 tasks\n"


def test_cli_allow_private_urls_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(tmp_path / "cli_home"))
    with local_server() as base:
        assert main(["ingest", "--json", f"{base}/notes.txt"]) == 2
        assert "loopback" in json.loads(capsys.readouterr().out)["errors"][0]["error"]
        assert main(["ingest", "--json", "--allow-private-urls", f"{base}/notes.txt"]) == 0
    assert json.loads(capsys.readouterr().out)["documents_added"] == 1
