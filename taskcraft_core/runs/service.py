"""Generation runs: create one from a request, execute it (blocking or in the background), cancel it,
find the ones a dead process left behind, and resume them.

A run is a stored `GenerationRun`. Its `config` is a snapshot taken at creation — the request, the
resolved document ids, the engine, the model names, the base URL (never the key), the prompt version
hash and the settings that shape the output — and a resume executes with exactly that snapshot.
Its `counts` hold the stage, units done / total, the funnel per kind, unit errors and a heartbeat.

`limit` caps verified tasks per kind: once a stage has made that many, it starts no more units and
stops the ones in flight (left undone). A unit's tasks are kept whole, so the unit that crossed the
limit may take the stage a little above it (one chunk gives several candidates). The explore stage
is a single unit (one exploration from one start page), so there the limit is spread over the
guideline families instead: ceil(limit / 4) candidates per family, which verify to at most about
the limit (and, as candidates can fail, sometimes fewer).

`method_pipeline` wires the real method (generate/*) into the executor (run_executor.py).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from taskcraft_core.access import require
from taskcraft_core.errors import EnvironmentFailure, TaskCraftError
from taskcraft_core.generate.explore.records import GUIDELINES
from taskcraft_core.index.consistency import ensure_index
from taskcraft_core.runs import queue
from taskcraft_core.runs.call_counts import StepCalls
from taskcraft_core.runs.executor import (
    OUTCOMES,
    STAGES,
    Executor,
    ProgressCallback,
    RunProgress,
    looks_dead,
    snapshot_workspace,
)
from taskcraft_core.runs.planning import Pipeline, PipelineFactory
from taskcraft_core.runs.site_exploration import is_exploration
from taskcraft_core.schema import (
    Document,
    EmptyUnit,
    GenerationRun,
    RunConfig,
    RunCounts,
    RunRequest,
    Task,
    UnitError,
    utcnow,
)
from taskcraft_core.settings import Settings
from taskcraft_core.store import Store
from taskcraft_core.workspace import Workspace, environment_failure_of

__all__ = [
    "STAGES", "RunProgress", "RunRequest", "RunSummary", "cancel_run", "create_run", "execute_run", "interrupted_runs",
    "method_pipeline", "resume_run_in_background", "run_progress", "run_summary", "start_run_in_background",
    "step_calls",
    "wait_for_run",
]

# Settings that shape what a run makes; snapshotted on the run and restored on resume.
RUN_SETTINGS: tuple[str, ...] = (
    "engine", "model", "generation_model", "solver_model", "judge_model", "openai_base_url", "openai_base_urls",
    "request_timeout_s", "max_retries", "concurrency", "cache_responses", "agent_max_steps",
    "tool_timeout_s", "solver_can_fetch_urls", "web_search_url", "max_candidates_per_chunk",
    "max_candidates_per_document", "max_verified_per_document", "max_hops", "hop_attempts",
    "width_group_size", "judge_votes", "accept_min_agent_score", "accept_max_alone_score",
    "accept_agent_must_beat_alone",
    "duplicate_threshold", "duplicate_action", "near_exact_ratio", "answer_match_ratio", "name_match_ratio",
)
# Candidates an exploration's task writer makes per guideline family when the run has no limit.
EXPLORE_TASKS_PER_GUIDELINE = 5

# Runs executing in this process (a second execution of the same run must not start).
_active: set[str] = set()
_active_lock = threading.Lock()


# ---- creating ---------------------------------------------------------------------------------


def create_run(workspace: Workspace, request: RunRequest) -> GenerationRun:
    """Validate the request, snapshot the configuration and store the run (not yet executed)."""
    require(workspace.principal, "generate")
    _validate(request)
    document_ids = _resolve_documents(workspace.store, request.document_ids)
    settings = _run_settings(workspace.settings, request)
    run = GenerationRun(id=uuid.uuid4().hex[:16], config=_snapshot(settings, request, document_ids))
    workspace.store.save_run(run)
    workspace.audit("generate", run.id, {"request": request.model_dump(exclude_none=True), "engine": settings.engine,
                                         "endpoint": settings.endpoint if settings.engine == "openai" else None})
    return run


def _validate(request: RunRequest) -> None:
    unknown = [kind for kind in request.kinds if kind not in STAGES]
    if unknown or not request.kinds:
        raise TaskCraftError(f"Unknown task kinds: {', '.join(unknown) or '(none given)'}.",
                             f"Choose among {', '.join(STAGES)}.")
    if request.limit is not None and request.limit < 1:
        raise TaskCraftError(f"The limit must be at least 1, not {request.limit}.", "Leave it out for no limit.")
    if request.concurrency is not None and not 1 <= request.concurrency <= 64:
        raise TaskCraftError(f"Concurrency must be between 1 and 64, not {request.concurrency}.",
                             "Leave it out for the default (settings.concurrency, 8).")
    if request.engine not in (None, "offline", "openai"):
        raise TaskCraftError(f"Unknown engine {request.engine!r}.", "Use offline or openai.")


def _resolve_documents(store: Store, requested: list[str]) -> list[str]:
    known = [summary.id for summary in store.list_documents()]
    if not known:
        raise TaskCraftError("There are no documents to generate from.",
                             "Ingest documents or load the sample corpus first.")
    missing = [document_id for document_id in requested if document_id not in set(known)]
    if missing:
        raise TaskCraftError(f"Unknown document ids: {', '.join(missing)}.", "List documents with the Corpus page.")
    return list(dict.fromkeys(requested)) or known


def _run_settings(settings: Settings, request: RunRequest) -> Settings:
    engine = request.engine or settings.active_engine
    changes = {"engine": engine, "openai_base_url": request.base_url, "concurrency": request.concurrency}
    resolved = settings.with_changes(**{key: value for key, value in changes.items() if value is not None})
    if request.model:
        # A model named in the request serves every role, as `make_engine` does.
        resolved = resolved.with_changes(model=request.model, generation_model=None, solver_model=None,
                                         judge_model=None)
    if engine == "openai" and not (resolved.openai_api_key or resolved.base_urls):
        raise TaskCraftError("The openai engine needs an endpoint.",
                             "Set OPENAI_API_KEY or a base URL, or use the offline engine.")
    return resolved


def _snapshot(settings: Settings, request: RunRequest, document_ids: list[str]) -> RunConfig:
    from taskcraft_core.generate.prompts import PROMPT_VERSION

    return RunConfig(
        request=request, document_ids=document_ids, engine=settings.engine,
        models={role: settings.model_for(role) for role in ("generation", "solver", "judge")},
        base_url=settings.openai_base_url, prompt_version=PROMPT_VERSION, workers=settings.workers,
        settings=settings.model_dump(mode="json", include=set(RUN_SETTINGS)),
    )


# ---- the method a run executes ---------------------------------------------------------------


def method_pipeline(workspace: Workspace, run: GenerationRun) -> Pipeline:
    """The real method (generate/*) with one engine for the whole run, and the dedup gate."""
    from taskcraft_core.curate import dedup
    from taskcraft_core.generate.atomic import NoCandidatesError, generate_atomic
    from taskcraft_core.generate.context import AcceptanceRule, GenerationContext
    from taskcraft_core.generate.depth import extend_depth
    from taskcraft_core.generate.explore.tasks import (
        NoExploreTasksError,
        choose_start_page,
        explore_corpus,
        generate_explore_tasks,
    )
    from taskcraft_core.generate.factory import make_engine
    from taskcraft_core.generate.width import extend_width, group_for_width
    from taskcraft_core.index import task_vectors
    from taskcraft_core.models.chat import Usage

    # The workspace carries the run's snapshot settings: model names and base URL are resolved there.
    engine = make_engine(workspace.settings, run.config.engine)

    def new_context(cancel: threading.Event) -> GenerationContext:
        return GenerationContext(workspace=workspace, engine=engine, usage=Usage(), run_id=run.id, cancel=cancel,
                                 acceptance=AcceptanceRule.from_settings(workspace.settings))

    def explore_starts(documents: Sequence[Document], ctx: GenerationContext) -> list[Document]:
        return [choose_start_page(documents, ctx)] if documents else []

    per_guideline = explore_tasks_per_guideline(run.config.request.limit)

    def explore(documents: Sequence[Document], start: Document, ctx: GenerationContext) -> list[Task]:
        exploration = explore_corpus(documents, ctx, start_document_id=start.id)
        return generate_explore_tasks(exploration, ctx, max_tasks_per_guideline=per_guideline)

    return Pipeline(new_context, generate_atomic, extend_depth, group_for_width, extend_width, explore_starts, explore,
                    gate=dedup.gate_candidate, index_tasks=task_vectors.index_tasks,
                    empty_unit_errors=(NoCandidatesError, NoExploreTasksError))


def explore_tasks_per_guideline(limit: int | None) -> int:
    """Candidates the explore unit writes per guideline family: EXPLORE_TASKS_PER_GUIDELINE, or
    fewer under a run limit (the limit spread over the families, rounded up), so that the stage's
    single unit stays near the limit instead of far above it, with every family represented."""
    return EXPLORE_TASKS_PER_GUIDELINE if limit is None else min(EXPLORE_TASKS_PER_GUIDELINE,
                                                                 math.ceil(limit / len(GUIDELINES)))


# ---- executing --------------------------------------------------------------------------------


def execute_run(workspace: Workspace, run_id: str, progress: ProgressCallback | None = None, *,
                pipeline: PipelineFactory = method_pipeline) -> GenerationRun:
    """Execute a stored run until it completes, is cancelled or fails; blocking. Executing a run
    again resumes it: done units are skipped, units that failed are retried."""
    require(workspace.principal, "generate")
    run = _stage_run(workspace.store, run_id)
    _claim(run)
    return _execute_claimed(workspace, run, progress, pipeline)


def executed_before(run: GenerationRun) -> bool:
    """Whether the run has executed before (so executing it now is a resume)."""
    return bool(run.done_units) or run.counts.model_dump() != RunCounts().model_dump()


def _record_resume(workspace: Workspace, run: GenerationRun) -> GenerationRun:
    """A resume executes with the endpoint of the person resuming: it becomes the run's snapshot
    endpoint (what workers read), noted on the run and in the audit log. A first execution is left as
    created."""
    if not executed_before(run):
        return run
    note = _resume_note(workspace, run, workspace.settings)
    settings = {**run.config.settings, "openai_base_url": workspace.settings.openai_base_url}
    config = run.config.model_copy(update={"resumes": [*run.config.resumes, note], "settings": settings})
    workspace.store.update_run(run.id, config=config)
    workspace.audit("resume", run.id, dict(note))
    return run.model_copy(update={"config": config})


def _resume_note(workspace: Workspace, run: GenerationRun, settings: Settings) -> dict[str, str]:
    """What a resume says about its endpoint (kept on the run and in the audit log)."""
    stored = run.config.base_url
    moved = run.config.engine == "openai" and stored is not None and settings.endpoint != stored.rstrip("/")
    return {"by": workspace.principal.id or "local user", "at": utcnow().isoformat(),
            "endpoint": settings.endpoint if run.config.engine == "openai" else "offline",
            "note": "resumed with the endpoint and key of the person resuming"
            + (f" (the run started with {stored})" if moved else "")}


def _execute_claimed(workspace: Workspace, run: GenerationRun, progress: ProgressCallback | None,
                     pipeline: PipelineFactory) -> GenerationRun:
    try:
        run = _record_resume(workspace, run)
        workspace.store.update_run(run.id, status="running", error=None, finished_at=None)
        executor = Executor(snapshot_workspace(workspace, run), run, pipeline, progress)
        try:
            ensure_index(workspace)  # a run never verifies against an index that misses documents
            executor.execute()
        except (KeyboardInterrupt, SystemExit):
            workspace.store.update_run(run.id, status="interrupted", counts=executor.state.counts())
            raise
        except Exception as error:
            failure = environment_failure_of(error, workspace.settings)
            if failure is None and isinstance(error, TaskCraftError):
                executor.state.failure = str(error)
            else:
                # The environment failed (a full disk, a read-only index) or a bug: recorded on the run
                # while the database still takes a write, so it is not left "running", then surfaced.
                message = str(failure) if failure else f"{type(error).__name__}: {error}"
                with contextlib.suppress(EnvironmentFailure):
                    workspace.store.update_run(run.id, status="failed", error=message, finished_at=utcnow(),
                                               counts=executor.state.counts())
                if failure is None or failure is error:
                    raise
                raise failure from error
        state = executor.state
        status = "failed" if state.failure else "cancelled" if state.user_cancelled else "completed"
        workspace.store.update_run(run.id, status=status, error=state.failure, finished_at=utcnow(),
                                   counts=state.counts())
    finally:
        with _active_lock:
            _active.discard(run.id)
    return _get_run(workspace.store, run.id)


def _claim(run: GenerationRun) -> None:
    """Refuse to execute a run that is already executing, here or in a live process elsewhere."""
    with _active_lock:
        busy_here = run.id in _active
        busy_elsewhere = run.status == "running" and (_on_queue(run) or (
            run.counts.heartbeat is not None and run.counts.pid != os.getpid() and not looks_dead(run)))
        if busy_here or busy_elsewhere:
            raise TaskCraftError(f"Run {run.id} is already executing.", "Wait for it, or cancel it first.")
        _active.add(run.id)


def start_run_in_background(workspace: Workspace, request: RunRequest) -> str:
    """Create a run and execute it on a background thread, or on the queue workers with
    `workers = "queue"`; returns its id at once."""
    if workspace.settings.workers == "queue":
        queue.conninfo(workspace.settings.resolved_database_url)  # refused before a run is stored
    run = create_run(workspace, request)
    _in_background(workspace, run.id)
    return run.id


def resume_run_in_background(workspace: Workspace, run_id: str) -> None:
    """Continue an interrupted, cancelled or failed run on a background thread (or the queue
    workers with `workers = "queue"`), with the endpoint and key of the person resuming. Raises
    TaskCraftError when the run is still executing (a cancelled run is "cancelled" at once but stops
    within a second; it has stopped when `finished_at` is set)."""
    require(workspace.principal, "generate")
    _in_background(workspace, run_id)


def _in_background(workspace: Workspace, run_id: str) -> None:
    run = _stage_run(workspace.store, run_id)
    if workspace.settings.workers == "queue":
        if run.status == "running" and run.counts.heartbeat is not None:  # a new run has none yet
            raise TaskCraftError(f"Run {run.id} is already executing.", "Wait for it, or cancel it first.")
        queue.enqueue_run(workspace, _record_resume(workspace, run))
        return
    _claim(run)  # here, so that "already executing" reaches the caller instead of the thread
    # Running from this moment: whoever looks next sees the run started, not still interrupted.
    workspace.store.update_run(run_id, status="running", error=None, finished_at=None)
    threading.Thread(target=_execute_claimed, args=(workspace, run, None, method_pipeline),
                     name=f"run-{run_id}", daemon=True).start()


def cancel_run(workspace: Workspace, run_id: str) -> None:
    """Ask a run to stop: the executor notices within a second, keeps every unit done so far and
    ends as "cancelled"; a cancelled run can be resumed later."""
    require(workspace.principal, "generate")
    run = _get_run(workspace.store, run_id)
    workspace.audit("cancel", run_id)
    if run.status in ("running", "interrupted"):
        # Only the status column is written, so the executor's progress is never overwritten.
        if _on_queue(run):  # no coordinator closes a queue run: its units in flight stop within a second
            workspace.store.update_run(run_id, status="cancelled", finished_at=utcnow())
        else:
            workspace.store.update_run(run_id, status="cancelled")


def wait_for_run(workspace: Workspace, run_id: str, progress: ProgressCallback | None = None,
                 poll_s: float = 1.0) -> GenerationRun:
    """Follow a run executing elsewhere (queue workers) until it stops running; returns it."""
    while True:
        run = _get_run(workspace.store, run_id)
        if progress is not None:
            progress(run_progress(run))
        if run.status != "running":
            return run
        time.sleep(poll_s)


def _on_queue(run: GenerationRun) -> bool:
    """Queue runs live as long as their jobs: no process heartbeat tells whether they are alive."""
    return run.config.workers == "queue"


def interrupted_runs(workspace: Workspace) -> list[GenerationRun]:
    """Runs a dead process left unfinished (marked "interrupted" here as they are found)."""
    found: list[GenerationRun] = []
    for run in workspace.store.list_runs(limit=200):
        if run.status == "running" and run.id not in _active and not _on_queue(run) and looks_dead(run):
            workspace.store.update_run(run.id, status="interrupted")
            run = run.model_copy(update={"status": "interrupted"})
        if run.status == "interrupted":
            found.append(run)
    return found


def _get_run(store: Store, run_id: str) -> GenerationRun:
    run = store.get_run(run_id)
    if run is None:
        raise TaskCraftError(f"No generation run with id {run_id}.", "List runs with `runs`.")
    return run


def _stage_run(store: Store, run_id: str) -> GenerationRun:
    """A run the stage executor may execute: a website exploration has its own (`site_exploration`)."""
    run = _get_run(store, run_id)
    if is_exploration(run):
        raise TaskCraftError(f"Run {run_id} is a website exploration.",
                             f"Resume it with `explore --resume {run_id}` or on the Generate page.")
    return run


# ---- reading ----------------------------------------------------------------------------------


def run_progress(run: GenerationRun) -> RunProgress:
    """The progress of a stored run, for polling (the UI reads it from the database)."""
    counts = run.counts
    return RunProgress(run_id=run.id, done=counts.done, total=counts.total, stage=counts.stage,
                       counts=dict(counts.funnel))


class KindSummary(BaseModel):
    """The yield of one kind: candidates = accepted + rejected, as stored; duplicates were gated among
    them; present ones were met already stored (by an earlier run or an import) and left as they were."""

    candidates: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    present: int = 0


class RunSummary(BaseModel):
    """The run's yield, counting what it stored: candidates = accepted (verified, awaiting review) +
    rejected (failed verification or skipped as a near-duplicate); `already_present` counts candidates
    it found stored before and left as they were. `by_kind` also counts gated near-duplicates.
    Its JSON is what `generate --json` prints."""

    run_id: str
    candidates: int
    accepted: int
    rejected: int
    already_present: int
    by_kind: dict[str, KindSummary]
    model_calls: int
    calls: dict[str, Any] = Field(default_factory=dict, description="Model calls by step, per candidate and "
                                  "per verified task (`StepCalls.report`).")
    errors: list[UnitError]
    empty_units: list[EmptyUnit] = Field(default_factory=list, description="Units that had nothing to give, "
                                         "with the reason (a chunk without facts): why a run made few candidates.")
    status: str = ""
    error: str | None = None


def run_summary(run: GenerationRun) -> RunSummary:
    funnel = run.counts.funnel
    by_kind = {kind: KindSummary(**{outcome: funnel.get(f"{kind}_{outcome}", 0) for outcome in OUTCOMES})
               for kind in STAGES if kind in run.config.request.kinds}
    return RunSummary(
        run_id=run.id, by_kind=by_kind, model_calls=run.model_calls, errors=list(run.counts.errors),
        empty_units=list(run.counts.empty_units),
        candidates=sum(counts.candidates for counts in by_kind.values()),
        accepted=sum(counts.accepted for counts in by_kind.values()),
        rejected=sum(counts.rejected for counts in by_kind.values()),
        already_present=sum(counts.present for counts in by_kind.values()),
        calls=step_calls(run).report(), status=run.status, error=run.error,
    )


def step_calls(run: GenerationRun) -> StepCalls:
    """The run's model calls by step, with its candidates and verified tasks."""
    funnel = run.counts.funnel
    return StepCalls(by_step=dict(run.counts.calls_by_step),
                     candidates=sum(funnel.get(f"{kind}_candidates", 0) for kind in STAGES),
                     verified=sum(funnel.get(f"{kind}_accepted", 0) for kind in STAGES))
