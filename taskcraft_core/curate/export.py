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
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from taskcraft_core.curate.formats import exporter_for
from taskcraft_core.curate.records import iter_records
from taskcraft_core.schema import SCHEMA_VERSION, TASK_STATUSES, utcnow
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

MANIFEST_SUFFIX = ".manifest.json"



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


def _export_ids(workspace: Workspace, task_filter: TaskFilter, drop_duplicates: bool) -> tuple[list[str], int]:
    """Ids to export in order, and how many were dropped as duplicates."""
    if not drop_duplicates:
        return workspace.store.list_task_ids(task_filter), 0
    from taskcraft_core.curate.dedup import duplicates_to_drop, find_near_duplicates

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
