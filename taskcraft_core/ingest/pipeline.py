"""The ingestion pipeline: sources (files, URLs, zip archives) -> documents and chunks in store and index.

One source failing never stops the others: each failure becomes one entry of the report, with a
message that names the file and says what is wrong with it. What a user brings is also kept, by
content hash, under the uploads folder of the data home.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from taskcraft_core.access import require
from taskcraft_core.errors import EnvironmentFailure, IngestError
from taskcraft_core.index.consistency import finish_unfinished_documents
from taskcraft_core.index.task_vectors import rebuild_task_index
from taskcraft_core.ingest.chunking import chunk_document
from taskcraft_core.ingest.loaders import doc_type_for, fallback_title, load_document
from taskcraft_core.ingest.names import document_names, site_affixes, strip_affixes
from taskcraft_core.ingest.web import CONTENT_TYPES, fetch_url, human_size
from taskcraft_core.settings import Settings
from taskcraft_core.workspace import Workspace, environment_failure_of

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]  # (done, total, current source name)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
DOC_TYPE_SUFFIX = {"pdf": ".pdf", "html": ".html", "text": ".txt", "markdown": ".md", "zip": ".zip"}
READ_PIECE = 1 << 20
# A zip member expanding to more than ZIP_MAX_RATIO times its compressed size is refused as a zip bomb,
# whatever the settings: prose compresses about 3:1 and even repetitive logs stay well under 100:1,
# while 10 MB of zeros is about 1000:1. Members below ZIP_RATIO_FLOOR bytes are exempt (cheap to read).
ZIP_MAX_RATIO = 100
ZIP_RATIO_FLOOR = 1_000_000


class Source(BaseModel):
    """One input: a file's bytes (name is its file name or relative path) or a URL."""

    name: str
    data: bytes | None = None
    url: str | None = None

    @classmethod
    def from_path(cls, path: Path) -> Source:
        return cls(name=path.name, data=path.read_bytes())


class IngestFailure(BaseModel):
    """One source (or archive member) that could not be ingested, and why."""

    source: str
    error: str


class IngestReport(BaseModel):
    """What one ingestion did; document_ids lists added and already-present documents."""

    documents_added: int = 0
    documents_skipped: int = Field(0, description="Sources whose text was already stored (same content hash).")
    chunks_added: int = 0
    errors: list[IngestFailure] = []
    document_ids: list[str] = []
    unsupported_skipped: list[str] = Field(
        [], description="Files of unsupported types met while walking a directory; skipped, not errors."
    )

    def fail(self, source: str, error: Exception) -> None:
        self.errors.append(_failure(source, error))


@dataclass
class UnsupportedFile:
    """A file a directory walk passes over because its type cannot be read (source code, images, ...)."""

    name: str


@dataclass
class RawInput:
    """The bytes of one would-be document, with the type they are read as."""

    name: str
    data: bytes
    doc_type: str
    base_url: str | None = None


def ingest_sources(
    sources: Sequence[Source], workspace: Workspace, progress: ProgressCallback | None = None
) -> IngestReport:
    """Ingest every source; failures are collected in the report, never raised (AccessDenied is,
    before anything is read, when the acting principal may not add documents)."""
    require(workspace.principal, "ingest")
    report = IngestReport()
    for done, source in enumerate(sources, start=1):
        _ingest_source(source, workspace, report)
        if progress:
            progress(done, len(sources), source.name)
    if report.documents_added:
        rename_documents(workspace)
    workspace.audit("ingest", ", ".join(source.name for source in sources)[:500], {
        "documents_added": report.documents_added, "documents_skipped": report.documents_skipped,
        "errors": len(report.errors), "private_urls": workspace.settings.allow_private_urls,
    })
    return report


def ingest_page(workspace: Workspace, url: str, html: str) -> str:
    """Store a page a browser showed (its rendered HTML) as a document, like a fetched URL: text,
    links, chunks and vectors; returns its document id (an already stored page: that one's).
    IngestError when the page gives no usable text."""
    report = IngestReport()
    _ingest_item(RawInput(url, html.encode("utf-8"), "html", url), workspace, report)
    return report.document_ids[0]


def rename_documents(workspace: Workspace) -> int:
    """Strip the affixes the stored documents' titles share (a site's name on every page) from their
    identifiers and aliases; returns how many documents were renamed. Runs after each ingestion, as a
    new page can reveal an affix of the pages stored before it."""
    stored = workspace.store.document_names()
    affixes = site_affixes([d.page_title for d in stored], [d.site_name for d in stored])
    renamed = 0
    for names in stored:
        if not any(name and strip_affixes(name, affixes) != name for name in (names.page_title, names.heading)):
            continue
        document = workspace.store.get_document(names.id)
        if document is None:
            continue
        identifier, aliases = document_names(names.page_title, names.heading, fallback_title(names.source),
                                             document.text, affixes)
        if (identifier, aliases) != (names.title, names.aliases):
            workspace.store.rename_document(names.id, identifier, aliases)
            workspace.index.retitle_document(names.id, identifier)
            renamed += 1
    return renamed


def allowing_private_urls(workspace: Workspace) -> Workspace:
    """The workspace with URLs on loopback, private and link-local addresses allowed, for a principal
    who may (admins): from a shared server such URLs reach its own network (cloud metadata included)."""
    require(workspace.principal, "private_urls")
    return dataclasses.replace(workspace, settings=workspace.settings.with_changes(allow_private_urls=True))


def ingest_locations(
    locations: Sequence[str], workspace: Workspace, progress: ProgressCallback | None = None
) -> IngestReport:
    """Ingest file paths, directories (recursively) and http(s) URLs."""
    require(workspace.principal, "ingest")
    sources: list[Source] = []
    failures: list[IngestFailure] = []
    unsupported: list[str] = []
    for location in locations:
        for item in _location_sources(location, workspace.settings):
            if isinstance(item, IngestFailure):
                failures.append(item)
            elif isinstance(item, UnsupportedFile):
                unsupported.append(item.name)
            else:
                sources.append(item)
    report = ingest_sources(sources, workspace, progress)
    report.errors = failures + report.errors
    report.unsupported_skipped = unsupported
    return report


def sample_corpus_path() -> Path:
    return Path(__file__).parent / "sample_corpus"


def load_sample_corpus(workspace: Workspace, progress: ProgressCallback | None = None) -> IngestReport:
    """The bundled sample corpus; loading it twice adds nothing."""
    return ingest_locations([str(sample_corpus_path())], workspace, progress)


def delete_document(workspace: Workspace, document_id: str) -> bool:
    """Remove a document and its chunks from the database and the index; False if it did not exist."""
    require(workspace.principal, "delete")
    removed = workspace.store.delete_document(document_id)
    workspace.index.delete_document(document_id)
    if removed:
        workspace.audit("delete", document_id, {"what": "document"})
    return removed


def reindex(workspace: Workspace) -> int:
    """Rebuild the chunk and task collections from the database (documents an ingest left unfinished
    included); returns the number of chunks indexed."""
    finish_unfinished_documents(workspace)
    chunks = workspace.index.rebuild_chunks(workspace.store)
    rebuild_task_index(workspace)
    return chunks


# ---- one source -----------------------------------------------------------------------------


def _ingest_source(source: Source, workspace: Workspace, report: IngestReport) -> None:
    with _failure_reported(report, source.name, workspace.settings):
        raw = _raw_input(source, workspace.settings)
        _keep_upload(raw, workspace.settings)
        items = _zip_members(raw, workspace.settings) if raw.doc_type == "zip" else iter([raw])
        for item in items:
            if isinstance(item, IngestFailure):
                report.errors.append(item)
            else:
                with _failure_reported(report, item.name, workspace.settings):
                    _ingest_item(item, workspace, report)


@contextmanager
def _failure_reported(report: IngestReport, name: str, settings: Settings) -> Iterator[None]:
    """Turn the failure of one source or member into a report entry, so the batch goes on; a failure
    of the environment stops the batch instead."""
    try:
        yield
    except IngestError as error:
        report.fail(name, error)
    except EnvironmentFailure:
        raise  # a full disk or a read-only home fails every source after this one too
    except Exception as error:  # a bug in a loader must not cost the rest of the batch; it is logged
        failure = environment_failure_of(error, settings)
        if failure is not None:
            raise failure from error
        logger.exception("unexpected error while ingesting %s", name)
        report.fail(name, IngestError(f"unexpected error ({type(error).__name__}: {error})"))


def _raw_input(source: Source, settings: Settings) -> RawInput:
    if source.url:
        fetched = fetch_url(source.url, settings)
        return RawInput(source.name, fetched.data, CONTENT_TYPES[fetched.content_type], fetched.final_url)
    if source.data is None:
        raise IngestError("nothing to read: the source has neither bytes nor a URL")
    _check_size(len(source.data), settings)
    return RawInput(source.name, source.data, _source_type(source.name))


def _source_type(name: str) -> str:
    """"zip" for an archive, else the document type; IngestError for types we cannot read."""
    return "zip" if name.lower().endswith(".zip") else doc_type_for(name)


def _check_size(size: int, settings: Settings) -> None:
    if size > settings.max_file_bytes:
        raise IngestError(
            f"the file is {human_size(size)}, over the {human_size(settings.max_file_bytes)} limit (max_file_bytes)",
            hint="split it or raise max_file_bytes",
        )


def _keep_upload(raw: RawInput, settings: Settings) -> None:
    """Store the original bytes by content hash, so nothing a user brings is lost."""
    path = settings.uploads_path / (hashlib.sha256(raw.data).hexdigest() + DOC_TYPE_SUFFIX[raw.doc_type])
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(raw.data)
        partial.replace(path)


def _ingest_item(item: RawInput, workspace: Workspace, report: IngestReport) -> None:
    document = load_document(item.name, item.data, item.doc_type, item.base_url, workspace.settings)
    chunks = chunk_document(document, workspace.settings.chunk_size, workspace.settings.chunk_overlap)
    if not workspace.store.add_document(document, chunks, indexing=True):
        report.documents_skipped += 1
        report.document_ids.append(document.id)
        return
    # The rows are stored "indexing": until marked ready the document is not present, and the next
    # open finishes it if this process stops here (killed, or the cleanup below fails too).
    try:
        workspace.index.add_chunks(document, chunks)
    except Exception:
        _abandon(workspace, document.id)
        raise
    workspace.store.mark_document_ready(document.id)
    report.documents_added += 1
    report.chunks_added += len(chunks)
    report.document_ids.append(document.id)


def _abandon(workspace: Workspace, document_id: str) -> None:
    """Remove what a failed ingest of one document wrote. When the removal fails as well (a full
    disk), the document stays "indexing": never listed, and finished on the next open."""
    try:
        # Rows first: if another process finished the document meanwhile, its vectors stay.
        if workspace.store.remove_unfinished_document(document_id):
            workspace.index.delete_document(document_id)
    except Exception as error:
        logger.warning("could not remove the incomplete document %s (%s); it will be finished on the next open",
                       document_id, error)


# ---- locations ------------------------------------------------------------------------------


def _location_sources(location: str, settings: Settings) -> Iterator[Source | IngestFailure | UnsupportedFile]:
    """The sources one location stands for; what cannot even be read is a failure right away.

    A file named on its own must be ingested, so an unsupported type is an error; a directory holds
    whatever else its owner keeps there, so its unsupported files are passed over.
    """
    path = Path(location).expanduser()
    if URL_SCHEME.match(location):
        if location.lower().startswith(("http://", "https://")):
            yield Source(name=location, url=location)
        else:
            yield _failure(location, IngestError("only http and https URLs can be fetched"))
    elif path.is_dir():
        for file in _files_in(path):
            name = file.relative_to(path.parent).as_posix()
            if not _inside(file, path):
                yield _failure(name, IngestError("the link points outside the folder; not followed",
                                                 hint="copy the file into the folder to ingest it"))
            else:
                yield _path_source(file, name, settings) if _supported(name) else UnsupportedFile(name)
    elif path.is_file():
        yield _path_source(path, path.name, settings)
    else:
        yield _failure(location, IngestError("no such file or directory"))


def _files_in(folder: Path) -> list[Path]:
    """Every file under the folder, sorted, without hidden ones; linked folders are not descended
    into (a link to a file is listed, and `_inside` decides about it)."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not _hidden(Path(d))]
        files += [Path(root) / n for n in names if not _hidden(Path(n)) and (Path(root) / n).is_file()]
    return sorted(files)


def _inside(file: Path, folder: Path) -> bool:
    """Whether the file, links resolved, is within the folder (links within the folder are fine)."""
    return file.resolve().is_relative_to(folder.resolve())


def _supported(name: str) -> bool:
    try:
        _source_type(name)
    except IngestError:
        return False
    return True


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts)


def _path_source(path: Path, name: str, settings: Settings) -> Source | IngestFailure:
    """A file's Source; an oversized file is refused before its bytes are read."""
    try:
        _check_size(path.stat().st_size, settings)
        return Source(name=name, data=path.read_bytes())
    except IngestError as error:
        return _failure(name, error)
    except OSError as error:
        return _failure(name, IngestError(f"the file cannot be read ({error.strerror})"))


def _failure(source: str, error: Exception) -> IngestFailure:
    return IngestFailure(source=source, error=f"{source}: {error}")


# ---- zip archives ---------------------------------------------------------------------------


def _zip_members(archive: RawInput, settings: Settings) -> Iterator[RawInput | IngestFailure]:
    """Each supported member as its own input; limits checked on declared sizes and while reading."""
    try:
        zip_file = zipfile.ZipFile(io.BytesIO(archive.data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise IngestError(f"the archive is corrupt or not a zip file ({error})") from None
    members = [info for info in zip_file.infolist() if not info.is_dir() and not _junk_member(info.filename)]
    if len(members) > settings.zip_max_entries:
        raise IngestError(
            f"the archive has {len(members)} entries, over the limit of {settings.zip_max_entries} (zip_max_entries)"
        )
    declared = sum(info.file_size for info in members)
    if declared > settings.zip_max_total_bytes:
        raise IngestError(_bomb_message(f"declares {human_size(declared)} uncompressed", settings))
    budget = settings.zip_max_total_bytes
    for info in members:
        name = f"{archive.name}/{info.filename}"
        try:
            doc_type = _member_type(info)
            _check_ratio(info, len(archive.data))
            data = _read_member(zip_file, info, min(budget, settings.max_file_bytes) + 1)
        except IngestError as error:
            yield _failure(name, error)
            continue
        if len(data) > budget:
            raise IngestError(_bomb_message(f"expands past the limit while reading {info.filename}", settings))
        budget -= len(data)
        try:
            _check_size(len(data), settings)
        except IngestError as error:
            yield _failure(name, error)
            continue
        yield RawInput(name, data, doc_type)


def _junk_member(filename: str) -> bool:
    """Metadata that archivers add (macOS resource forks, dot files), not documents."""
    return filename.startswith("__MACOSX/") or filename.rstrip("/").rsplit("/", 1)[-1].startswith(".")


def _member_type(info: zipfile.ZipInfo) -> str:
    path = info.filename.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in path.split("/"):
        raise IngestError("the path escapes the archive's folder; member refused")
    if info.flag_bits & 0x1:
        raise IngestError("the member is encrypted", hint="extract it with its password first")
    if path.lower().endswith(".zip"):
        raise IngestError("archives inside archives are not expanded", hint="ingest the inner archive on its own")
    return doc_type_for(path)


def _read_member(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """At most `limit` bytes of a member, read piece by piece (a declared size can lie)."""
    pieces: list[bytes] = []
    size = 0
    try:
        with zip_file.open(info) as member:
            while size < limit and (piece := member.read(min(READ_PIECE, limit - size))):
                pieces.append(piece)
                size += len(piece)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as error:
        raise IngestError(f"the archive member is corrupt ({error})") from None
    return b"".join(pieces)


def _check_ratio(info: zipfile.ZipInfo, archive_size: int) -> None:
    """Refuse a member over ZIP_RATIO_FLOOR that declares more than ZIP_MAX_RATIO times its compressed size.

    Checking the declared sizes is enough: zipfile never returns more than the declared size (it stops
    there and the CRC check fails) nor reads more than the declared compressed size, and a member cannot
    have used more compressed bytes than the whole archive, whatever it declares.
    """
    expanded, compressed = info.file_size, max(1, min(info.compress_size, archive_size))
    if expanded > ZIP_RATIO_FLOOR and expanded > ZIP_MAX_RATIO * compressed:
        raise IngestError(
            f"the member would expand {human_size(compressed)} to {human_size(expanded)}, a compression ratio "
            f"of {expanded // compressed}:1, over the limit of {ZIP_MAX_RATIO}:1 (ZIP_MAX_RATIO); it looks like "
            "a zip bomb and was not expanded",
            hint="if you trust it, extract it and ingest the file itself",
        )


def _bomb_message(what: str, settings: Settings) -> str:
    return (
        f"the archive {what}, over the {human_size(settings.zip_max_total_bytes)} limit "
        "(zip_max_total_bytes); it looks like a zip bomb and was not expanded further"
    )
