"""Reading a PDF's text in a separate process with a memory and a time cap, within page and character limits.

A small PDF can expand enormously (pages that share one content stream give the same text again and
again), and a hostile one can make the parser spin or allocate without end. So the studio never
parses a PDF in its own process. A reader process (`python -m taskcraft_core.ingest.pdf_reader`,
started once, pypdf loaded) takes one PDF at a time and forks a child for it; the child sets
`RLIMIT_AS` and `RLIMIT_CPU`, stops extracting as soon as the page or character limit is passed, and
is killed at the wall-clock limit. A fork costs milliseconds where a new interpreter importing pypdf
costs half a second. Whatever happens to the child, the caller gets an `IngestError` naming the
setting that was exceeded; if the reader process itself stops answering it is replaced.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from taskcraft_core.errors import IngestError

READER = [sys.executable, "-m", "taskcraft_core.ingest.pdf_reader"]
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `taskcraft_core` can be imported from
HINT_SPLIT = "split the PDF, or raise {setting} if you trust it"
READER_GRACE_S = 10.0  # beyond the PDF's own time limit, before the reader process is given up on
POLL_S = 0.01


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


class _Reader:
    """The reader process, shared by the threads of this process; one PDF at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None

    def read(self, data: bytes, limits: PdfLimits) -> dict[str, Any]:
        with self.lock:
            process = self._running()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps({**asdict(limits), "size": len(data)}).encode() + b"\n" + data)
                process.stdin.flush()
                line = _read_line(process.stdout, limits.timeout_s + READER_GRACE_S)
            except (OSError, TimeoutError):
                line = b""
            if not line:  # the reader itself failed: replace it, and say what the PDF was doing
                process.kill()
                process.wait()
                self.process = None
                return {"outcome": "died", "exitcode": None}
            return dict(json.loads(line))

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
            env = {**os.environ, "PYTHONPATH": path}
            self.process = subprocess.Popen(READER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        return self.process


_READER = _Reader()


def read_pdf_isolated(data: bytes, limits: PdfLimits) -> PdfText:
    """The PDF's pages, read by a capped child process; IngestError on any failure or limit."""
    answer = _READER.read(data, limits)
    outcome = answer["outcome"]
    if outcome == "ok":
        return PdfText(pages=answer["pages"], title=answer["title"])
    if outcome == "refused":
        raise IngestError(answer["error"], hint=answer["hint"])
    if outcome in ("timeout", "cpu"):
        raise IngestError(f"reading the PDF took longer than {limits.timeout_s:g} s (pdf_parse_timeout_s)",
                          hint=HINT_SPLIT.format(setting="pdf_parse_timeout_s"))
    if outcome == "memory":
        raise IngestError(f"reading the PDF needed more than {limits.memory_mb} MB of memory (pdf_parse_memory_mb)",
                          hint=HINT_SPLIT.format(setting="pdf_parse_memory_mb"))
    raise IngestError(f"the PDF could not be read (the reader stopped, exit code {answer.get('exitcode')})",
                      hint="re-export or repair the file")


def _read_line(stream: IO[bytes], timeout_s: float) -> bytes:
    """One line from the reader, or TimeoutError when none comes within the time."""
    deadline = time.monotonic() + timeout_s
    while not select.select([stream], [], [], POLL_S)[0]:
        if time.monotonic() > deadline:
            raise TimeoutError
    return stream.readline()


# ---- the reader process --------------------------------------------------------------------------


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Read PDFs from `requests` (a JSON header line with the limits and the size, then the bytes) and
    write one JSON line per PDF to `answers`, each PDF parsed in a capped child."""
    import pypdf  # noqa: F401  (loaded once here, inherited by every child)

    while header := requests.readline():
        request = json.loads(header)
        data = requests.read(request.pop("size"))
        answers.write(json.dumps(_in_child(data, PdfLimits(**request))).encode() + b"\n")
        answers.flush()


def _in_child(data: bytes, limits: PdfLimits) -> dict[str, Any]:
    """Fork, parse in the child under the caps, and turn how the child ended into an answer."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: caps first, then parse; it never returns
        os.close(readable)
        _child(writable, data, limits)
    os.close(writable)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limits.timeout_s
    with os.fdopen(readable, "rb") as pipe:
        while time.monotonic() < deadline:
            if select.select([pipe], [], [], min(0.1, max(0.0, deadline - time.monotonic())))[0]:
                chunk = pipe.read1(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"outcome": "timeout"}
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
        return {"outcome": "cpu"}
    if chunks:
        return dict(json.loads(b"".join(chunks)))
    return {"outcome": "died", "exitcode": os.waitstatus_to_exitcode(status)}


def _reached(memory_bytes: int) -> bool:
    """Whether this process's peak address space came within 5% of the cap."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) * 1024 >= 0.95 * memory_bytes
    return False


def _child(writable: int, data: bytes, limits: PdfLimits) -> None:
    code = 0
    try:
        memory = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(limits.timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        try:
            answer: dict[str, Any] = {"outcome": "ok", **extract(data, limits.max_pages, limits.max_chars)}
        except IngestError as error:
            answer = {"outcome": "refused", "error": error.message, "hint": error.hint}
        except MemoryError:
            answer = {"outcome": "memory"}
        except Exception:
            # An allocation refused inside a C extension surfaces as some other error: when the
            # child has reached its address-space cap, that is what happened.
            if not _reached(memory):
                raise
            answer = {"outcome": "memory"}
        encoded = json.dumps(answer).encode()
        view = memoryview(encoded)
        while view:
            view = view[os.write(writable, view):]
    except MemoryError:
        code = 3
        try:
            os.write(writable, b'{"outcome": "memory"}')
        except OSError:
            pass
    except BaseException:
        code = 4
    finally:
        os._exit(code)


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


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
