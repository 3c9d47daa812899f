"""Generate: configure and start a run, watch it live, cancel, resume, and see the run history.

Runs execute on a background thread; the page only polls the run record in the database, so a
browser reload (or a second browser) sees the same progress.
"""

from __future__ import annotations

import streamlit as st

from app_pages._common import engine_label, index_catching_up, may, user_errors, workspace
from app_pages._exploration import ACTIVE_EXPLORATION, show_explore, show_trajectory
from taskcraft_core.runs import service as runs
from taskcraft_core.runs import site_exploration as site
from taskcraft_core.runs.queue import queue_health
from taskcraft_core.schema import GenerationRun
from taskcraft_core.workspace import Workspace

ACTIVE_RUN, RESUMED = "generate_active_run", "generate_resumed"
RESUMABLE = ("interrupted", "cancelled", "failed")


def run_form(ws: Workspace) -> runs.RunRequest | None:
    documents = {doc.id: doc.title for doc in ws.store.list_documents()}
    if not documents:
        st.info("No documents yet: add some on the Corpus page (or load the sample corpus there).")
        return None
    settings = ws.settings
    with st.form("generate_form"):
        document_ids = st.multiselect("Documents (none chosen: all)", list(documents), format_func=documents.get,
                                      key="generate_documents")
        kinds = st.multiselect("Kinds", runs.STAGES, default=list(runs.STAGES), key="generate_kinds")
        left, right = st.columns(2)
        engine = left.selectbox("Engine", ("offline", "openai"), index=("offline", "openai").index(
            settings.active_engine), key="generate_engine")
        model = right.text_input("Model", value=settings.model_for("generation"), key="generate_model",
                                 help="Used by the openai engine; the endpoint and key come from Settings.")
        limit = left.number_input("Limit (verified tasks per kind, 0 = no limit)", 0, 10_000, 0,
                                  key="generate_limit")
        concurrency = right.number_input("Concurrency", 1, 64, settings.concurrency, key="generate_concurrency")
        if not st.form_submit_button("Start run", type="primary"):
            return None
    return runs.RunRequest(kinds=kinds, document_ids=document_ids, limit=int(limit) or None, engine=engine,
                           model=(model.strip() or None) if engine == "openai" else None,
                           concurrency=int(concurrency))


@st.fragment(run_every=1)
def live_progress(run_id: str) -> None:
    """Polls the run record each second; a finished run reruns the page once and stops polling."""
    ws = workspace()
    run = ws.store.get_run(run_id)
    if run is None or run.status != "running":
        st.session_state.pop(ACTIVE_RUN, None)
        st.rerun()
    progress = runs.run_progress(run)
    fraction = progress.done / progress.total if progress.total else 0.0
    st.progress(fraction, text=f"{progress.stage or 'starting'} · {progress.done}/{progress.total} units")
    if progress.counts:
        st.dataframe([progress.counts], hide_index=True)
    if st.button("Cancel run", key="generate_cancel"):
        with user_errors():
            runs.cancel_run(ws, run_id)


def resume_controls(ws: Workspace) -> None:
    runs.interrupted_runs(ws)  # marks runs a dead process left behind as interrupted
    resumable = [run.id for run in ws.store.list_runs() if run.status in RESUMABLE]
    if not resumable:
        return
    chosen = st.selectbox("Resume a run", resumable, key="generate_resume_id",
                          help="A resumed run uses your endpoint and key (Settings), not the ones it started with.")
    if st.button("Resume", key="generate_resume"):
        with user_errors():
            run = ws.store.get_run(chosen)
            if run is not None and site.is_exploration(run):
                site.resume_exploration_in_background(ws, chosen)
                st.session_state[ACTIVE_EXPLORATION] = chosen
            else:
                runs.resume_run_in_background(ws, chosen)
                st.session_state[ACTIVE_RUN] = chosen
            st.session_state[RESUMED] = (f"Resumed run {chosen} with your endpoint and key: "
                                         f"{engine_label(ws.settings)}.")
            st.rerun()


def worker_health(ws: Workspace) -> None:
    """With queue workers: who is alive, and how much work is waiting, in flight and failed."""
    health = queue_health(ws.store)
    alive = [worker for worker in health.workers if worker.alive]
    st.subheader("Workers")
    if not alive:
        st.warning("No live worker: queued units wait until `python -m taskcraft_core worker` runs.")
    st.caption(f"{len(alive)} live workers · {health.in_flight} units in flight · {health.waiting} waiting · "
               f"{health.failed} failed")
    if health.workers:
        st.dataframe([{"worker": w.id, "alive": w.alive, "units in flight": w.units_in_flight,
                       "last heartbeat (s ago)": round(w.seconds_since_heartbeat, 1)} for w in health.workers],
                     hide_index=True)


def history_rows(history: list[GenerationRun]) -> list[dict[str, object]]:
    rows = []
    for run in history:
        summary = runs.run_summary(run)
        request = run.config.request
        rows.append({
            "run": run.id, "status": run.status, "started": run.started_at, "engine": run.config.engine,
            "models": ", ".join(sorted(set(run.config.models.values()))),
            "kinds": ", ".join(request.kinds), "documents": len(run.config.document_ids),
            "limit": request.limit, "candidates": summary.candidates, "verified": summary.accepted,
            "rejected": summary.rejected, "model calls": summary.model_calls,
            "errors": len(summary.errors),
        })
    return rows


st.title("Generate")
ws = workspace()
if not may("generate"):
    st.info(f"Running generation needs the curator role (you are a {ws.principal.role}).")
    st.stop()
if resumed := st.session_state.pop(RESUMED, None):
    st.success(resumed)
index_catching_up("a run started now begins verifying when it is done")
request = run_form(ws)
if request is not None:
    with user_errors():
        st.session_state[ACTIVE_RUN] = runs.start_run_in_background(ws, request)
if st.session_state.get(ACTIVE_RUN):
    live_progress(st.session_state[ACTIVE_RUN])
show_explore(ws)

history = ws.store.list_runs(limit=50)
resume_controls(ws)
if ws.settings.workers == "queue":
    worker_health(ws)
st.subheader("Run history")
if history:
    st.dataframe(history_rows(history), hide_index=True)
    with st.expander("Configuration of a run"):
        shown = st.selectbox("Run", [run.id for run in history], key="generate_config_id")
        st.json(next(run.config.model_dump(mode="json") for run in history if run.id == shown))
else:
    st.caption("No runs yet.")
show_trajectory(ws, history)
