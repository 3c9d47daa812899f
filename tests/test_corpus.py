"""Loaders (PDF, HTML, text, Markdown) and chunking with exact offsets, on committed fixture files."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from taskcraft_core.errors import IngestError
from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import decode_text, doc_type_for, load_document
from taskcraft_core.ingest.pipeline import sample_corpus_path

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str, base_url: str | None = None):
    return load_document(name, (FIXTURES / name).read_bytes(), doc_type_for(name), base_url)


def assert_offsets_exact(document, chunks) -> None:
    assert chunks, "a document with text has chunks"
    for position, chunk in enumerate(chunks):
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert chunk.position == position
        assert chunk.id == f"{document.id}:{position}"
        page_start = document.page_offsets[chunk.page - 1]
        page_end = document.page_offsets[chunk.page] if chunk.page < document.pages else len(document.text) + 1
        assert page_start <= chunk.start < page_end


def test_pdf_has_pages_offsets_and_metadata_title() -> None:
    document = load("report.pdf")
    assert document.doc_type == "pdf"
    assert document.title == "Gull Point Weather Report 1968"
    assert document.pages == 3
    assert document.page_offsets[0] == 0
    assert document.text.startswith("Annual report of the Gull Point weather station for 1968.")
    second_page = document.text[document.page_offsets[1] : document.page_offsets[2]]
    assert document.text[document.page_offsets[1] - 2 : document.page_offsets[1]] == "\n\n"
    assert second_page.startswith("Station log, week")
    assert "142 kilometres per hour" in document.text


def test_pdf_chunks_know_the_page_they_start_on() -> None:
    document = load("report.pdf")
    chunks = chunk_document(document, chunk_size=300, chunk_overlap=60)
    assert_offsets_exact(document, chunks)
    assert {chunk.page for chunk in chunks} == {1, 2, 3}
    assert chunks[-1].end == len(document.text)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("corrupt.pdf", "the PDF is corrupt or not a PDF"),
        ("encrypted.pdf", "the PDF is encrypted and no password was given"),
        ("drawing_only.pdf", "the PDF has no extractable text"),
        ("empty.txt", "the file is empty"),
        ("binary.txt", "looks like binary data, not text"),
    ],
)
def test_bad_files_raise_a_clear_ingest_error(name: str, phrase: str) -> None:
    with pytest.raises(IngestError) as caught:
        load(name)
    assert caught.value.message.startswith(phrase)
    assert caught.value.hint


def test_html_drops_scripts_handlers_navigation_and_keeps_links() -> None:
    document = load("script.html", base_url="https://example.org/guide/notes.html")
    assert document.title == "Gull Point Visitor Notes"
    assert document.text == (
        "Gull Point Visitor Notes\nThe Lantern Path is 4.1 kilometres long.\nThe galleries open on Friday evenings."
    )
    assert document.links == ["https://example.org/guide/index.html", "https://example.org/guide/lantern_path.html"]


def test_html_links_stay_relative_without_a_base_url() -> None:
    assert load("script.html").links == ["index.html", "lantern_path.html"]


def test_html_without_title_uses_its_first_heading() -> None:
    html = (b"<html><body><header><h1>Site</h1></header>"
            b"<main><h2>Tide Tables</h2><p>High water 06:12.</p></main></body></html>")
    document = load_document("tides.html", html, "html")
    assert document.title == "Tide Tables"
    assert document.text == "Tide Tables\nHigh water 06:12."
    chrome_only = b"<html><body><header><h1>Site</h1></header><p>Only a paragraph.</p></body></html>"
    assert load_document("chrome.html", chrome_only, "html").title == "Site"
    assert load_document("plain.html", b"<p>Only a paragraph.</p>", "html").title == "plain.html"


def test_non_utf8_text_is_decoded_by_detection() -> None:
    document = load("latin1.txt")
    assert document.text.startswith("Notes de voyage \u00e0 Kestrel Haven\n\nLe caf\u00e9 du port")
    assert "\ufffd" not in document.text
    assert document.title == "latin1.txt"  # no heading: the file name identifies it


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (codecs.BOM_UTF8 + "Grüße".encode(), "Grüße"),
        ("Grüße aus Kestrel Haven".encode("utf-16"), "Grüße aus Kestrel Haven"),
        (b"plain ascii", "plain ascii"),
    ],
)
def test_decode_text_honours_byte_order_marks_and_utf8(data: bytes, text: str) -> None:
    assert decode_text(data) == text


def test_markdown_title_and_links() -> None:
    document = load("notes.md")
    assert (document.doc_type, document.title, document.links) == ("markdown", "Harbour Notes", ["timeline.txt"])
    underlined = load_document("u.txt", b"Harbour Log\n===========\n\nCalm sea.\n", "text")
    assert underlined.title == "Harbour Log"


def test_unsupported_file_types_are_named() -> None:
    with pytest.raises(IngestError, match=r"unsupported file type '\.docx'"):
        doc_type_for("minutes.docx")
    assert doc_type_for("archive/Page.HTM") == "html"


def test_chunk_offsets_are_exact_even_with_repeated_text() -> None:
    paragraph = "The tide rose 19 centimetres between 1937 and 1987.\n\n"
    document = load_document("repeat.md", (paragraph * 80).encode(), "markdown")
    chunks = chunk_document(document, chunk_size=200, chunk_overlap=60)
    assert len(chunks) > 20
    assert_offsets_exact(document, chunks)
    # Each chunk sits where it really is: right after the previous one, sharing at most the overlap.
    assert (chunks[0].start, chunks[-1].end) == (0, len(document.text) - 2)
    assert all(
        earlier.end - 60 <= later.start <= earlier.end for earlier, later in zip(chunks, chunks[1:], strict=False)
    )


def test_text_without_whitespace_is_cut_in_chunk_size_pieces_quickly() -> None:
    text = "".join(f"{n:07d}" for n in range(300_000)) + "\n\nThe end."  # 2.1 MB, no whitespace but the tail
    document = load_document("run.txt", text.encode(), "text")
    chunks = chunk_document(document, chunk_size=1000, chunk_overlap=100)  # timed by bench.bench_ingest
    assert_offsets_exact(document, chunks)
    assert [(c.start, c.end) for c in chunks[:3]] == [(0, 1000), (900, 1900), (1800, 2800)]
    # Pieces start every 900 characters; the 2334th (start 2333 * 900) is cut short at the run's end.
    assert (len(chunks), chunks[-2].start, chunks[-2].end) == (2335, 2_099_700, 2_100_000)
    assert (chunks[-1].text, chunks[-1].start) == ("The end.", 2_100_002)


def test_sample_corpus_chunks_are_exact_slices() -> None:
    for path in sorted(sample_corpus_path().iterdir()):
        document = load_document(path.name, path.read_bytes(), doc_type_for(path.name))
        assert_offsets_exact(document, chunk_document(document, chunk_size=400, chunk_overlap=80))
