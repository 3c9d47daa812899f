"""Export curated tasks: the JSONL record contract, a registry of formats, and a checksummed manifest.

Every format writes from the same stream of records (`task_record`, the contract of the
generation issue), fetched from the database a batch at a time. The built-in formats register
themselves through `register_exporter`, exactly as a user's own format would.

Columnar formats (parquet, hf_dataset) keep the nested fields as nested columns, with two
conventions a fixed schema needs: `golden_answer` is always a list of strings (one element for
atomic and depth tasks), and free-form dicts (`args` of a step, `edits` of a review) are JSON
strings. CSV flattens every nested field to a JSON string.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import SCHEMA_VERSION, TASK_STATUSES, Review, Task, utcnow
from taskcraft_core.store import Store, TaskFilter
from taskcraft_core.workspace import Workspace

IMPORTED_KEY = "imported"  # difficulty_inputs entry holding what an import could not map elsewhere
EXPORT_BATCH = 1000
MANIFEST_SUFFIX = ".manifest.json"

Record = dict[str, Any]


# ---- the record contract ------------------------------------------------------------------------


def decisions_in_force(store: Store, task_ids: Sequence[str]) -> dict[str, Review]:
    """The decision in force (the newest standing review) of each task that has one."""
    return {task_id: in_force[-1] for task_id, in_force in store.standing_reviews(task_ids).items() if in_force}


def _review_record(review: Review | None) -> Record | None:
    if review is None:
        return None
    return {"reviewer": review.reviewer, "decision": review.decision, "reason": review.reason,
            "edits": review.edits, "time": review.created_at.isoformat()}


def _source_title(task: Task, titles: dict[str, str]) -> str | None:
    if task.document_id in titles:
        return titles[task.document_id]
    return task.difficulty_inputs.get(IMPORTED_KEY, {}).get("source_title")


def build_record(task: Task, titles: dict[str, str], review: Review | None) -> Record:
    """The contract record of one task, from the task, the document titles and its decision."""
    check = task.verification
    return {
        "id": task.id, "kind": task.kind, "question": task.question, "golden_answer": task.golden_answer,
        "content_identifier": task.content_identifier, "relation": task.relation, "hops": task.hops,
        "difficulty": task.difficulty, "engine": task.engine, "model": task.model, "status": task.status,
        "source": {"document_id": task.document_id, "title": _source_title(task, titles),
                   "chunk_id": task.chunk_id, "start": task.span_start, "end": task.span_end},
        "parents": list(task.parent_ids),
        "trajectory": [{"type": s.type, "content": s.content, "tool": s.tool, "args": s.args,
                        "observation": s.observation} for s in task.trajectory],
        "verification": None if check is None else {
            "model_alone_answer": check.model_alone_answer, "model_alone_score": check.model_alone_score,
            "agent_answer": check.agent_answer, "agent_score": check.agent_score},
        "review": _review_record(review),
    }


def task_record(task: Task, store: Store) -> Record:
    """The JSONL contract record of one task (edited question and answer are what it says now)."""
    document = store.get_document(task.document_id) if task.document_id else None
    titles = {document.id: document.title} if document else {}
    return build_record(task, titles, decisions_in_force(store, [task.id]).get(task.id))


def iter_records(store: Store, task_ids: Sequence[str], batch_size: int = EXPORT_BATCH) -> Iterator[Record]:
    """Records of the given tasks in order, fetched and built a batch at a time."""
    titles = {doc.id: doc.title for doc in store.list_documents()}
    for start in range(0, len(task_ids), batch_size):
        batch = task_ids[start : start + batch_size]
        decisions = decisions_in_force(store, batch)
        for task in store.get_tasks(batch):
            yield build_record(task, titles, decisions.get(task.id))


# ---- the registry -------------------------------------------------------------------------------


class Exporter(Protocol):
    """A format: its name, the file extension ("" for a folder) and a writer of records."""

    name: str
    extension: str
    description: str

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        """Write the records to `out`; return the files written."""
        ...


EXPORT_FORMATS: dict[str, Exporter] = {}


def register_exporter(exporter: Exporter) -> Exporter:
    EXPORT_FORMATS[exporter.name] = exporter
    return exporter


class JsonLinesExporter:
    """One JSON object per line, each made from a record by a conversion function."""

    def __init__(self, name: str, description: str, convert: Callable[[Record], Record]) -> None:
        self.name, self.description, self.extension, self.convert = name, description, ".jsonl", convert

    def write(self, records: Iterable[Record], out: Path) -> list[Path]:
        with out.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(self.convert(record), ensure_ascii=False))
                handle.write("\n")
        return [out]


def _identity(record: Record) -> Record:
    return record


# ---- export -------------------------------------------------------------------------------------


class ExportManifest(BaseModel):
    """What an export holds: format, filters, count, files with checksums, when, which schema."""

    format: str
    filters: dict[str, Any]
    count: int
    dropped_duplicates: int = 0
    files: list[dict[str, Any]] = Field(description="path (relative to the manifest), sha256, bytes")
    created_at: datetime = Field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The manifest file's text."""
        return self.model_dump_json(indent=2)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_entries(paths: Iterable[Path], base: Path) -> list[dict[str, Any]]:
    files = []
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                files.append({"path": file.relative_to(base).as_posix(), "sha256": _sha256(file),
                              "bytes": file.stat().st_size})
    return files


def exporter_for(fmt: str) -> Exporter:
    if fmt not in EXPORT_FORMATS:
        raise TaskCraftError(f"Unknown export format {fmt!r}.", f"Choose one of: {', '.join(EXPORT_FORMATS)}.")
    return EXPORT_FORMATS[fmt]


def _export_ids(workspace: Workspace, task_filter: TaskFilter, drop_duplicates: bool) -> tuple[list[str], int]:
    """Ids to export in order, and how many were dropped as duplicates."""
    if not drop_duplicates:
        return workspace.store.list_task_ids(task_filter), 0
    from taskcraft_core.dedup import duplicates_to_drop, find_near_duplicates

    statuses = [s for s in (task_filter.statuses or TASK_STATUSES) if s != "duplicate"]
    kept_filter = task_filter.model_copy(update={"statuses": statuses})
    dropped_marked = workspace.store.count_tasks(task_filter) - workspace.store.count_tasks(kept_filter)
    ids = workspace.store.list_task_ids(kept_filter)
    accepted = set(workspace.store.list_task_ids(kept_filter.model_copy(update={"statuses": ["accepted"]})))
    dropped = duplicates_to_drop(find_near_duplicates(workspace, task_filter=kept_filter), accepted)
    return [i for i in ids if i not in dropped], dropped_marked + len(dropped)


def export_tasks(
    workspace: Workspace, fmt: str, task_filter: TaskFilter, out: Path, *, drop_duplicates: bool = False,
) -> ExportManifest:
    """Write the tasks matching the filter to `out` in a format, with `<out name>.manifest.json`
    beside it (so several exports can share a folder)."""
    exporter = exporter_for(fmt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids, dropped = _export_ids(workspace, task_filter, drop_duplicates)
    written = exporter.write(iter_records(workspace.store, ids), out)
    manifest = ExportManifest(format=fmt, filters=task_filter.model_dump(mode="json"), count=len(ids),
                              dropped_duplicates=dropped, files=_file_entries(written, out.parent))
    manifest_path(out).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def manifest_path(out: Path) -> Path:
    """Where the manifest of an export written to `out` (a file or a folder) goes: beside it."""
    return out.with_name(out.name + MANIFEST_SUFFIX)


def export_to_bytes(
    workspace: Workspace, fmt: str, task_filter: TaskFilter, *, drop_duplicates: bool = False,
) -> tuple[bytes, str, ExportManifest]:
    """An export as one download: the file itself, or a zip of a folder format with its manifest."""
    exporter = exporter_for(fmt)
    with tempfile.TemporaryDirectory() as tmp:
        name = f"taskcraft_{fmt}{exporter.extension}"
        out = Path(tmp) / "export" / name
        manifest = export_tasks(workspace, fmt, task_filter, out, drop_duplicates=drop_duplicates)
        if exporter.extension:
            return out.read_bytes(), name, manifest
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(out.parent.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(out.parent).as_posix())
        return buffer.getvalue(), f"{name}.zip", manifest


# The built-in formats (conversations and columnar layouts live in their own module).
register_exporter(JsonLinesExporter("jsonl", "The record contract, one task per line.", _identity))
from taskcraft_core import export_formats  # noqa: E402,F401  (registers the other built-ins)
