"""Reading a PDF's text in a separate process with a memory and a time cap, within page and character limits.

A small PDF can expand enormously (pages that share one content stream give the same text again and
again), and a hostile one can make the parser spin or allocate without end. So the studio never
parses a PDF in its own process: a child process (`python -m taskcraft_core.ingest.pdf_reader`)
reads the bytes from stdin under `RLIMIT_AS` and `RLIMIT_CPU`, stops extracting as soon as the page
or character limit is passed, and is killed at the wall-clock limit. Whatever happens to the child,
the server gets an `IngestError` naming the setting that was exceeded.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcraft_core.errors import IngestError

WORKER = [sys.executable, "-m", "taskcraft_core.ingest.pdf_reader"]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `taskcraft_core` can be imported from
EXIT_OK, EXIT_REFUSED = 0, 3
HINT_SPLIT = "split the PDF, or raise {setting} if you trust it"


@dataclass(frozen=True)
class PdfLimits:
    """The limits one PDF is read within (from Settings: max_pdf_pages, max_document_chars,
    pdf_parse_timeout_s, pdf_parse_memory_mb)."""

    max_pages: int = 2_000
    max_chars: int = 10_000_000
    timeout_s: float = 60.0
    memory_mb: int = 1_024


@dataclass
class PdfText:
    """The text of each page and the metadata title."""

    pages: list[str]
    title: str | None


def read_pdf_isolated(data: bytes, limits: PdfLimits) -> PdfText:
    """The PDF's pages, read by a capped child process; IngestError on any failure or limit."""

    def cap_resources() -> None:  # runs in the child before it starts Python
        memory = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    arguments = [str(limits.max_pages), str(limits.max_chars)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([*WORKER, *arguments], input=data, capture_output=True, timeout=limits.timeout_s,
                              preexec_fn=cap_resources, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise IngestError(f"reading the PDF took longer than {limits.timeout_s:g} s (pdf_parse_timeout_s)",
                          hint=HINT_SPLIT.format(setting="pdf_parse_timeout_s")) from None
    if done.returncode in (EXIT_OK, EXIT_REFUSED):
        answer = json.loads(done.stdout)
        if done.returncode == EXIT_REFUSED:
            raise IngestError(answer["error"], hint=answer.get("hint", ""))
        return PdfText(pages=answer["pages"], title=answer["title"])
    if b"MemoryError" in done.stderr or done.returncode in (-9, 137):
        raise IngestError(f"reading the PDF needed more than {limits.memory_mb} MB of memory (pdf_parse_memory_mb)",
                          hint=HINT_SPLIT.format(setting="pdf_parse_memory_mb"))
    if done.returncode in (-24, 152):  # SIGXCPU: the CPU limit
        raise IngestError(f"reading the PDF took longer than {limits.timeout_s:g} s (pdf_parse_timeout_s)",
                          hint=HINT_SPLIT.format(setting="pdf_parse_timeout_s"))
    last_line = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
    raise IngestError(f"the PDF could not be read (the reader stopped: {last_line[:200]})",
                      hint="re-export or repair the file")


# ---- the child process ---------------------------------------------------------------------------


def extract(data: bytes, max_pages: int, max_chars: int) -> dict[str, Any]:
    """Per-page text and the title, stopping as soon as a limit is passed (raises IngestError)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("the PDF is encrypted and no password was given", hint="decrypt it first, then ingest")
        count = len(reader.pages)
        if count > max_pages:
            raise IngestError(f"the PDF has {count:,} pages, over the limit of {max_pages:,} (max_pdf_pages)",
                              hint=HINT_SPLIT.format(setting="max_pdf_pages"))
        pages: list[str] = []
        total = 0
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            total += len(text)
            if total > max_chars:
                raise IngestError(
                    f"the PDF gives more than {max_chars:,} characters of text (max_document_chars) by page "
                    f"{len(pages) + 1} of {count:,}; reading stopped there",
                    hint=HINT_SPLIT.format(setting="max_document_chars"))
            pages.append(text)
        title = reader.metadata.title if reader.metadata else None
    except (FileNotDecryptedError, NotImplementedError) as error:
        raise IngestError("the PDF is encrypted and no password was given", hint=str(error)) from None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError,
            RecursionError) as error:
        raise IngestError(f"the PDF is corrupt or not a PDF ({error})", hint="re-export or repair the file") from None
    return {"pages": pages, "title": str(title) if title else None}


def main() -> int:
    max_pages, max_chars = int(sys.argv[1]), int(sys.argv[2])
    try:
        answer = extract(sys.stdin.buffer.read(), max_pages, max_chars)
    except IngestError as error:
        json.dump({"error": error.message, "hint": error.hint}, sys.stdout)
        return EXIT_REFUSED
    json.dump(answer, sys.stdout)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
