"""Ingestion speed against pypdf's bare text extraction of the same PDFs.

Run: `python -m bench.bench_ingest [--files 20] [--pages-per-file 10]`. Builds PDFs with varied text
(the fixture writer in tests/fixtures/pdfmaker.py), then times, on the same bytes:
  bare     pypdf: open + extract_text of every page (the floor any PDF ingestion pays);
  parse    our loader + chunking (pypdf extraction, page offsets, hashing, splitting with offsets);
  ingest   the whole pipeline into a fresh data home (SQLite store + Chroma index with wordllama).
Prints pages/s and chunks/s for each and our overhead as a ratio of the bare time (best of 3 for the
two read-only measurements, after one warm-up pass).
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pypdf import PdfReader

from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import load_document
from taskcraft_core.ingest.pipeline import Source, ingest_sources
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace
from tests.fixtures.pdfmaker import paginate, pdf_bytes

NAMES = ["Ada Merrow", "Tomas Quill", "Marta Lindqvist", "Edda Rask", "Ingrid Solberg", "Jonas Halvard"]
PLACES = ["Gull Point", "the Skerry Deep", "the Farrow Bank", "the North Quay", "the Brenna Sound"]
MONTHS = ["January", "March", "May", "June", "August", "October", "November"]


def paragraph(rng: random.Random) -> str:
    sentences = [
        f"On {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1930, 1995)} {rng.choice(NAMES)} measured "
        f"{rng.randint(10, 9000):,} metres near {rng.choice(PLACES)}.",
        f"The station recorded {rng.uniform(0, 40):.1f} degrees Celsius and {rng.randint(100, 2000)} "
        "millimetres of rain.",
        f"{rng.choice(NAMES)} wrote {rng.randint(2, 90)} reports about {rng.choice(PLACES)} in "
        f"{rng.randint(1930, 1995)}.",
    ]
    return " ".join(rng.choice(sentences) for _ in range(rng.randint(3, 7)))


def build_pdfs(files: int, pages_per_file: int) -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    pdfs = []
    for number in range(files):
        paragraphs: list[str] = []
        while len(paginate(paragraphs)) < pages_per_file + 1:
            paragraphs.append(paragraph(rng))
        pages = paginate(paragraphs)[:pages_per_file]
        pdfs.append((f"survey_{number:03d}.pdf", pdf_bytes(pages, title=f"Survey Report {number}")))
    return pdfs


def timed(label: str, run: Callable[[], None], repeats: int = 1) -> float:
    """The best of `repeats` runs (the ingest runs once: a second run would only skip duplicates)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    print(f"  {label:<8} {best:7.3f} s")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--pages-per-file", type=int, default=10)
    args = parser.parse_args()
    pdfs = build_pdfs(args.files, args.pages_per_file)
    pages = sum(len(PdfReader(io.BytesIO(data)).pages) for _, data in pdfs)
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="taskcraft-bench-")))
    print(f"{len(pdfs)} PDFs, {pages} pages, {sum(len(d) for _, d in pdfs) / 1e6:.2f} MB; "
          f"chunk_size {settings.chunk_size}, overlap {settings.chunk_overlap}")

    workspace = Workspace.open(settings)
    warm_up = time.perf_counter()
    workspace.index.embedding_function(["warm up the embedding model"])
    print(f"  (embedding model load, paid once per process: {time.perf_counter() - warm_up:.2f} s)")

    def bare() -> None:
        for _, data in pdfs:
            for page in PdfReader(io.BytesIO(data)).pages:
                page.extract_text()

    chunk_counts: list[int] = []

    def parse() -> None:
        for name, data in pdfs:
            document = load_document(name, data, "pdf")
            chunk_counts.append(len(chunk_document(document, settings.chunk_size, settings.chunk_overlap)))

    reports = []

    def ingest() -> None:
        reports.append(ingest_sources([Source(name=name, data=data) for name, data in pdfs], workspace))

    bare()  # warm-up: pypdf's first pass pays one-off costs that would be charged to whoever runs first
    bare_s, parse_s = timed("bare", bare, repeats=3), timed("parse", parse, repeats=3)
    chunk_counts[len(pdfs):] = []
    ingest_s = timed("ingest", ingest)
    report = reports[0]
    assert report.errors == [] and report.documents_added == len(pdfs), report
    chunks = report.chunks_added
    print()
    print(f"{'':<24}{'pages/s':>10}{'chunks/s':>10}{'x bare':>9}")
    for label, seconds in (("pypdf bare extraction", bare_s), ("ours: parse + chunk", parse_s),
                           ("ours: full ingest", ingest_s)):
        chunk_rate = "" if label.startswith("pypdf") else f"{chunks / seconds:10.0f}"
        print(f"{label:<24}{pages / seconds:10.1f}{chunk_rate:>10}{seconds / bare_s:9.2f}")
    print(f"\n{chunks} chunks; overhead of the full ingest over bare extraction: {ingest_s / bare_s:.2f}x "
          f"(parse + chunk alone: {parse_s / bare_s:.2f}x)")
    assert sum(chunk_counts) == chunks
    hostile_inputs(settings, workspace)


def hostile_inputs(settings: Settings, workspace: Workspace) -> None:
    """Inputs that must stay cheap: text without whitespace (the splitter's worst case) and a zip
    bomb (refused by its compression ratio before anything is expanded)."""
    text = "".join(f"{n:07d}" for n in range(300_000)) + "\n\nThe end."
    document = load_document("run.txt", text.encode(), "text")
    started = time.perf_counter()
    pieces = chunk_document(document, settings.chunk_size, settings.chunk_overlap)
    print(f"\nchunking {len(text) / 1e6:.1f} MB of text without whitespace: {time.perf_counter() - started:.3f} s "
          f"({len(pieces)} chunks)")
    bomb = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zip_bomb.zip"
    started = time.perf_counter()
    report = ingest_sources([Source(name=bomb.name, data=bomb.read_bytes())], workspace)
    print(f"refusing a zip bomb ({bomb.stat().st_size / 1e3:.1f} kB): {time.perf_counter() - started:.3f} s "
          f"({len(report.errors)} member refused)")


if __name__ == "__main__":
    main()
