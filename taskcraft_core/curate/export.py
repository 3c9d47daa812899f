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
import re
import tempfile
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from taskcraft_core.access import require
from taskcraft_core.curate.formats import exporter_for
from taskcraft_core.curate.records import iter_records
from taskcraft_core.curate.sampling import SampleReport, SampleRequest, draw_sample
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import SCHEMA_VERSION, TASK_STATUSES, utcnow
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

MANIFEST_SUFFIX = ".manifest.json"
EXPORTS_FOLDER = "exports"
# A folder name, not a path: starts with a letter or digit, no separators, no "..".
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def export_folder(workspace: Workspace, name: str) -> Path:
    """The folder `<data home>/exports/<name>` for a name a person typed; TaskCraftError unless the
    name is a plain folder name (so it cannot reach outside the exports folder)."""
    name = name.strip()
    if not FOLDER_NAME.fullmatch(name) or ".." in name:
        raise TaskCraftError(f"{name!r} is not a plain folder name.",
                             "Use letters, digits, '.', '_' and '-' (starting with a letter or digit), no '/' or '..'.")
    exports = (workspace.settings.home / EXPORTS_FOLDER).resolve()
    folder = exports / name
    if folder.is_symlink() or not folder.resolve().is_relative_to(exports):
        raise TaskCraftError(f"The export folder {name} points outside {exports}.", "Choose another name.")
    return folder

# ---- export -------------------------------------------------------------------------------------


class ExportManifest(BaseModel):
    """What an export holds: format, filters, count, files with checksums, when, which schema."""

    format: str
    filters: dict[str, Any]
    count: int
    dropped_duplicates: int = 0
    excluded_stale: int = Field(0, description="Tasks left out because a replay found their answer no longer holds.")
    sample: SampleReport | None = Field(None, description="The difficulty-mix sample: requested and realised.")
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


class Selection(BaseModel):
    """Which tasks an export holds, in order, and what was left out on the way."""

    ids: list[str]
    dropped_duplicates: int = 0
    excluded_stale: int = 0
    sample: SampleReport | None = None


def select_for_export(
    workspace: Workspace, task_filter: TaskFilter, *, drop_duplicates: bool = False, exclude_stale: bool = False,
    sample: SampleRequest | None = None,
) -> Selection:
    """The tasks an export writes: the filter, without duplicates and stale tasks when asked, then
    the difficulty-mix sample when asked (drawn from what is left, in the filter's order)."""
    ids, dropped = _export_ids(workspace, task_filter, drop_duplicates)
    stale = workspace.store.stale_task_ids(ids) if exclude_stale else set()
    ids = [i for i in ids if i not in stale]
    report = None
    if sample is not None:
        kept = set(ids)
        pool = [row for row in workspace.store.task_columns(["id", "difficulty", "kind"], task_filter)
                if row["id"] in kept]
        drawn, report = draw_sample(pool, sample)
        chosen = set(drawn)
        ids = [i for i in ids if i in chosen]
    return Selection(ids=ids, dropped_duplicates=dropped, excluded_stale=len(stale), sample=report)


def export_tasks(
    workspace: Workspace, fmt: str, task_filter: TaskFilter, out: Path, *, drop_duplicates: bool = False,
    exclude_stale: bool = False, sample: SampleRequest | None = None,
) -> ExportManifest:
    """Write the tasks matching the filter to `out` in a format, with `<out name>.manifest.json`
    beside it (so several exports can share a folder). Needs the export permission; audited."""
    require(workspace.principal, "export")
    manifest = _write_export(workspace, fmt, task_filter, out, drop_duplicates=drop_duplicates,
                             exclude_stale=exclude_stale, sample=sample)
    workspace.audit("export", str(out), {"format": fmt, "count": manifest.count, "filters": manifest.filters})
    return manifest


def _write_export(workspace: Workspace, fmt: str, task_filter: TaskFilter, out: Path, *, drop_duplicates: bool,
                  exclude_stale: bool, sample: SampleRequest | None) -> ExportManifest:
    exporter = exporter_for(fmt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    selection = select_for_export(workspace, task_filter, drop_duplicates=drop_duplicates,
                                  exclude_stale=exclude_stale, sample=sample)
    written = exporter.write(iter_records(workspace.store, selection.ids), out)
    manifest = ExportManifest(format=fmt, filters=task_filter.model_dump(mode="json"), count=len(selection.ids),
                              dropped_duplicates=selection.dropped_duplicates,
                              excluded_stale=selection.excluded_stale, sample=selection.sample,
                              files=_file_entries(written, out.parent))
    manifest_path(out).write_text(manifest.to_json(), encoding="utf-8")
    return manifest


def manifest_path(out: Path) -> Path:
    """Where the manifest of an export written to `out` (a file or a folder) goes: beside it."""
    return out.with_name(out.name + MANIFEST_SUFFIX)


def export_to_bytes(
    workspace: Workspace, fmt: str, task_filter: TaskFilter, *, drop_duplicates: bool = False,
    exclude_stale: bool = False, sample: SampleRequest | None = None,
) -> tuple[bytes, str, ExportManifest]:
    """An export as one download: the file itself, or a zip of a folder format with its manifest."""
    require(workspace.principal, "export")
    exporter = exporter_for(fmt)
    with tempfile.TemporaryDirectory() as tmp:
        name = f"taskcraft_{fmt}{exporter.extension}"
        out = Path(tmp) / "export" / name
        manifest = _write_export(workspace, fmt, task_filter, out, drop_duplicates=drop_duplicates,
                                 exclude_stale=exclude_stale, sample=sample)
        workspace.audit("export", f"download {name}", {"format": fmt, "count": manifest.count,
                                                      "filters": manifest.filters})
        if exporter.extension:
            return out.read_bytes(), name, manifest
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(out.parent.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(out.parent).as_posix())
        return buffer.getvalue(), f"{name}.zip", manifest
