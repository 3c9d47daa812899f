"""Export: a filtered subset (default: accepted) as JSONL, Parquet, CSV, OpenAI chat, ShareGPT or a
Hugging Face datasets folder; download it or write it under the data home; import tasks back."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app_pages._common import escape_markdown, filter_widgets, may, user_errors, workspace
from taskcraft_core.curate import export, formats, importers, review_queue
from taskcraft_core.curate.sampling import DIFFICULTY_LEVELS, SampleReport, SampleRequest, normalise_mix
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


def sample_options(ws: Workspace, task_filter: TaskFilter, options: dict[str, Any]) -> SampleRequest | None:
    """A difficulty-mix sample, with a preview of the requested and the realised counts."""
    if not st.checkbox("Sample to a difficulty mix", key="export_sample"):
        return None
    left, middle, right = st.columns(3)
    size = int(left.number_input("Tasks to draw", min_value=1, value=100, step=10, key="export_sample_size"))
    seed = int(middle.number_input("Seed", min_value=0, value=0, key="export_sample_seed"))
    by_kind = right.checkbox("Keep the mix within each kind", key="export_sample_by_kind")
    defaults = {1: 0.4, 2: 0.3, 3: 0.2, 4: 0.1}
    shares = {level: column.number_input(f"Difficulty {level}", 0.0, 1.0, defaults[level], 0.05,
                                         key=f"export_mix_{level}")
              for level, column in zip(DIFFICULTY_LEVELS, st.columns(4), strict=True)}
    with user_errors():
        request = SampleRequest(size=size, mix=normalise_mix(shares), by="kind" if by_kind else None, seed=seed)
        report = export.select_for_export(ws, task_filter, sample=request, **options).sample
        if report is not None:
            show_sample_preview(report)
        return request
    return None


def show_sample_preview(report: SampleReport) -> None:
    levels = [f"difficulty {level}" for level in report.target_counts]
    figure = go.Figure([
        go.Bar(name="requested", x=levels, y=list(report.target_counts.values())),
        go.Bar(name="realised", x=levels, y=[report.realised_counts.get(level, 0) for level in report.target_counts]),
    ])
    figure.update_layout(barmode="group", height=280, margin={"t": 30, "b": 10}, title="Requested vs realised")
    st.plotly_chart(figure, key="export_sample_plot")
    if report.pool_shortfall:
        st.warning(f"Only {report.drawn} tasks match: all of them are drawn ({report.pool_shortfall} short of "
                   f"{report.requested}).")
    elif report.shortfall:
        short = ", ".join(f"difficulty {level}: {n} short" for level, n in report.shortfall.items())
        st.info(f"The mix cannot be met exactly ({short}); other levels fill in to {report.drawn} tasks.")


def download(ws: Workspace, fmt: str, task_filter: TaskFilter, options: dict[str, Any]) -> None:
    """Build the file on request (a 36k-task export is not rebuilt on every rerun), then offer it."""
    parameters = (fmt, task_filter.model_dump_json(), repr(options))
    if st.button("Prepare download", key="export_prepare", type="primary"):
        with user_errors():
            data, name, manifest = export.export_to_bytes(ws, fmt, task_filter, **options)
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


def write_to_disk(ws: Workspace, fmt: str, task_filter: TaskFilter, options: dict[str, Any]) -> None:
    folder = ws.settings.home / "exports"
    name = st.text_input(f"Export folder under {folder}", value=f"tasks-{fmt}", key="export_name",
                         help="Each export gets its own folder: the data and its .manifest.json.")
    if st.button("Write to disk", key="export_write"):
        with user_errors():
            out = export.export_folder(ws, name) / f"tasks{formats.EXPORT_FORMATS[fmt].extension}"
            manifest = export.export_tasks(ws, fmt, task_filter, out, **options)
            st.success(escape_markdown(f"Wrote {manifest.count} tasks to {out.parent}."))
            st.json(manifest.model_dump(mode="json"))


def import_section(ws: Workspace) -> None:
    st.subheader("Import")
    fmt = st.radio("Records", ("jsonl", "taskcraft"), horizontal=True, key="import_format",
                   format_func={"jsonl": "TaskCraft Studio JSONL", "taskcraft": "TaskCraft library output"}.get)
    upload = st.file_uploader("JSONL file", type=["jsonl", "json"], key="import_upload")
    keep_decisions = may("import_decisions") and st.checkbox(
        "Import decisions as they are", key="import_keep_decisions",
        help="Admins only. Otherwise tasks come in pending and their decisions are kept as history, marked imported.")
    if upload is not None and st.button("Import", key="import_run"):
        with tempfile.TemporaryDirectory() as folder, user_errors():
            path = Path(folder) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            report = importers.import_tasks(ws, path, fmt, keep_decisions=keep_decisions)
            st.success(f"Added {report.added} tasks; {report.skipped} were already present.")
            if report.errors:
                st.error(f"{len(report.errors)} records could not be imported:")
                st.dataframe({"error": report.errors}, hide_index=True)


st.title("Export")
ws = workspace()
if not may("export"):
    st.info(f"Exporting and importing need the curator role (you are a {ws.principal.role}).")
    st.stop()
task_filter = filter_widgets("export", ws, default_statuses=["accepted"])
if preview(ws, task_filter):
    left, middle, right = st.columns(3)
    fmt = left.selectbox("Format", list(formats.EXPORT_FORMATS), key="export_format")
    options: dict[str, Any] = {"drop_duplicates": middle.checkbox("Drop near-duplicates", key="export_drop_duplicates"),
                               "exclude_stale": right.checkbox("Leave out stale tasks", key="export_exclude_stale",
                                                               help="Tasks a replay found no longer hold.")}
    if right.checkbox("Exclude flagged", key="export_exclude_flagged",
                      help="Leave out tasks that an automatic pre-review check flagged."):
        task_filter = task_filter.model_copy(update={"exclude_flagged": True})
    options["sample"] = sample_options(ws, task_filter, options)
    download(ws, fmt, task_filter, options)
    write_to_disk(ws, fmt, task_filter, options)
else:
    st.info("No tasks match these filters (the default is accepted tasks: accept some on the Review page).")
import_section(ws)
