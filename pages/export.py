"""Export: a filtered subset (default: accepted) as JSONL, Parquet, CSV, OpenAI chat, ShareGPT or a
Hugging Face datasets folder; download it or write it under the data home; import tasks back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from pages._common import escape_markdown, filter_widgets, user_errors, workspace
from taskcraft_core.curate import export, formats, importers, review_queue
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

SAMPLE_SIZE = 5
PREPARED = "export_prepared"


def preview(ws: Workspace, task_filter: TaskFilter) -> int:
    count = ws.store.count_tasks(task_filter)
    st.metric("Tasks in this export", f"{count:,}")
    sample = ws.store.list_tasks(task_filter, limit=SAMPLE_SIZE)
    if sample:
        st.dataframe(
            [{"id": task.id, "kind": task.kind, "status": task.status, "difficulty": task.difficulty,
              "question": task.question, "answer": review_queue.answer_as_text(task.golden_answer)}
             for task in sample],
            hide_index=True,
        )
    return count


def download(ws: Workspace, fmt: str, task_filter: TaskFilter, drop_duplicates: bool) -> None:
    """Build the file on request (a 36k-task export is not rebuilt on every rerun), then offer it."""
    parameters = (fmt, task_filter.model_dump_json(), drop_duplicates)
    if st.button("Prepare download", key="export_prepare", type="primary"):
        with user_errors():
            data, name, manifest = export.export_to_bytes(ws, fmt, task_filter, drop_duplicates=drop_duplicates)
            st.session_state[PREPARED] = (parameters, data, name, manifest.to_json())
    prepared = st.session_state.get(PREPARED)
    if prepared and prepared[0] == parameters:
        _, data, name, manifest = prepared
        st.download_button(f"Download {name}", data, file_name=name, key="export_download", on_click="ignore")
        if formats.EXPORT_FORMATS[fmt].extension:  # a folder format's zip holds its manifest already
            manifest_name = export.manifest_path(Path(name)).name
            st.download_button(f"Download {manifest_name}", manifest, file_name=manifest_name,
                               mime="application/json", key="export_download_manifest", on_click="ignore")
        with st.expander("Manifest"):
            st.json(manifest)


def write_to_disk(ws: Workspace, fmt: str, task_filter: TaskFilter, drop_duplicates: bool) -> None:
    folder = ws.settings.home / "exports"
    name = st.text_input(f"Export folder under {folder}", value=f"tasks-{fmt}", key="export_name",
                         help="Each export gets its own folder: the data and its .manifest.json.")
    if st.button("Write to disk", key="export_write"):
        if not name.strip() or Path(name).name != name.strip():
            st.error("Give a plain name, without folders.")
            return
        with user_errors():
            out = folder / name.strip() / f"tasks{formats.EXPORT_FORMATS[fmt].extension}"
            manifest = export.export_tasks(ws, fmt, task_filter, out, drop_duplicates=drop_duplicates)
            st.success(escape_markdown(f"Wrote {manifest.count} tasks to {out.parent}."))
            st.json(manifest.model_dump(mode="json"))


def import_section(ws: Workspace) -> None:
    st.subheader("Import")
    fmt = st.radio("Records", ("jsonl", "taskcraft"), horizontal=True, key="import_format",
                   format_func={"jsonl": "TaskCraft Studio JSONL", "taskcraft": "TaskCraft library output"}.get)
    upload = st.file_uploader("JSONL file", type=["jsonl", "json"], key="import_upload")
    if upload is not None and st.button("Import", key="import_run"):
        with tempfile.TemporaryDirectory() as folder, user_errors():
            path = Path(folder) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            report = importers.import_tasks(ws, path, fmt)
            st.success(f"Added {report.added} tasks; {report.skipped} were already present.")
            if report.errors:
                st.error(f"{len(report.errors)} records could not be imported:")
                st.dataframe({"error": report.errors}, hide_index=True)


st.title("Export")
ws = workspace()
task_filter = filter_widgets("export", ws, default_statuses=["accepted"])
if preview(ws, task_filter):
    left, right = st.columns(2)
    fmt = left.selectbox("Format", list(formats.EXPORT_FORMATS), key="export_format")
    drop_duplicates = right.checkbox("Drop near-duplicates", key="export_drop_duplicates")
    download(ws, fmt, task_filter, drop_duplicates)
    write_to_disk(ws, fmt, task_filter, drop_duplicates)
else:
    st.info("No tasks match these filters (the default is accepted tasks: accept some on the Review page).")
import_section(ws)
