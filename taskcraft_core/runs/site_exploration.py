"""A website exploration as a run (METHOD §2): create the run, explore the live site in a headless
browser, write goal-style tasks per guideline family, execute and verify them in the same browser,
and store everything with the run: the steps (with screenshots) as they are taken, the pages read as
documents, the tasks at the end.

Cancel (Ctrl-C, or `cancel_run` from anywhere: the explorer reads the run's status at every step)
keeps what was found: the steps and pages stored so far, and the tasks already verified. A resumed
exploration rebuilds its memory from the stored steps and pages, explores on with a fresh budget (it
does not visit a state it has seen), and writes tasks from everything.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from taskcraft_core.access import require
from taskcraft_core.agent.browser import BrowserLimits, BrowserSession
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.context import AcceptanceRule, GenerationCancelled, GenerationContext
from taskcraft_core.generate.explore.goals import generate_goal_tasks
from taskcraft_core.generate.explore.records import SiteExploration
from taskcraft_core.generate.explore.site import explore_site, rebuild_exploration
from taskcraft_core.generate.factory import make_engine
from taskcraft_core.generate.prompts import PROMPT_VERSION
from taskcraft_core.index.task_vectors import index_tasks
from taskcraft_core.models.chat import Usage
from taskcraft_core.runs.executor import HEARTBEAT_INTERVAL_S, looks_dead
from taskcraft_core.schema import (
    GUIDELINE_FAMILIES,
    GenerationRun,
    RunConfig,
    RunCounts,
    RunRequest,
    Task,
    guideline_of,
    utcnow,
)
from taskcraft_core.settings import Engine
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace

log = logging.getLogger(__name__)
EXPLORE_KEY = "explore_site"  # the run config's settings entry holding the exploration request


class ExploreRequest(BaseModel):
    """What a person asks a website exploration to do."""

    start_url: str
    max_pages: int | None = Field(None, ge=1, description="Page loads of the explorer (default explore_max_pages).")
    max_seconds: float | None = Field(None, gt=0, description="Seconds of exploring (default explore_max_seconds).")
    same_site: bool = True
    allow_private_urls: bool | None = Field(None, description="Default: the settings' allow_private_urls.")
    engine: Engine | None = Field(None, description="Default: the settings' active engine.")
    guidelines: list[str] = Field(default_factory=lambda: list(GUIDELINE_FAMILIES))
    tasks_per_guideline: int = Field(5, ge=1)
    steps_per_turn: int = Field(5, ge=1)


class ExploreSummary(BaseModel):
    """The outcome of a website exploration run; its JSON is what `explore --json` prints."""

    run_id: str
    status: str
    start_url: str
    pages_visited: int = Field(description="States the explorer reached: distinct page contents (fingerprints); "
                               "a search results page is one state per result list.")
    interactions: int = Field(description="Steps that used a page function (search, select).")
    steps: int
    candidates: int
    accepted: int
    by_family: dict[str, dict[str, int]] = Field(description="Per guideline family: candidates and accepted.")
    functions: list[str] = Field(default_factory=list, description="Functions found (kind name).")
    stopped: str = ""
    refused: int = Field(0, description="Requests refused by the URL guard, the same-site rule or robots.txt.")
    problems: list[str] = Field(default_factory=list)
    engine: str = ""


def start_exploration(workspace: Workspace, request: ExploreRequest,
                      cancel: threading.Event | None = None) -> ExploreSummary:
    """Create a run for the request and carry it out (see the module doc); returns its summary."""
    run = create_exploration(workspace, request)
    return run_exploration(workspace, run.id, cancel)


def create_exploration(workspace: Workspace, request: ExploreRequest) -> GenerationRun:
    """Store a website exploration run (status running, nothing explored yet); `run_exploration`
    carries it out (a page can start that in a thread and show the steps as they are stored)."""
    require(workspace.principal, "generate")
    _require_private_urls(workspace, request)
    chosen = request.engine or workspace.settings.active_engine
    engine = make_engine(workspace.settings, chosen)
    run = GenerationRun(id=uuid.uuid4().hex[:16], config=RunConfig(
        request=RunRequest(kinds=["explore"], engine=chosen), engine=chosen,
        models={"generation": engine.model}, prompt_version=PROMPT_VERSION,
        settings={EXPLORE_KEY: request.model_dump(mode="json")}))
    workspace.store.save_run(run)
    workspace.audit("generate", run.id, {"explore": request.start_url, "engine": engine.name})
    return run


def run_exploration(workspace: Workspace, run_id: str, cancel: threading.Event | None = None) -> ExploreSummary:
    """Carry out a created website exploration run; returns its summary."""
    require(workspace.principal, "generate")
    return _carry_out(_job(workspace, _exploration_run(workspace, run_id), cancel), resumed=False)


def start_exploration_in_background(workspace: Workspace, request: ExploreRequest) -> str:
    """Create an exploration run and carry it out on a background thread; returns its id at once
    (a page polls the run record, `cancel_run` stops it)."""
    run = create_exploration(workspace, request)
    _in_background(_job(workspace, run, None), resumed=False)
    return run.id


def resume_exploration_in_background(workspace: Workspace, run_id: str) -> None:
    """`resume_exploration` on a background thread (checks done before it starts, errors raised here)."""
    _in_background(_resumable(workspace, run_id, None), resumed=True)


def exploration_runs(workspace: Workspace, limit: int = 50) -> list[GenerationRun]:
    """The newest website exploration runs (other generation runs left out)."""
    return [run for run in workspace.store.list_runs(limit) if is_exploration(run)]


def is_exploration(run: GenerationRun) -> bool:
    """Whether a run is a website exploration (resumed with `resume_exploration`, not the stage executor)."""
    return EXPLORE_KEY in run.config.settings


def _exploration_run(workspace: Workspace, run_id: str) -> GenerationRun:
    run = workspace.store.get_run(run_id)
    if run is None or not is_exploration(run):
        raise TaskCraftError(f"No website exploration run with id {run_id}.", hint="list runs with `runs`")
    return run


def _require_private_urls(workspace: Workspace, request: ExploreRequest) -> None:
    """A request that allows private addresses needs the right to use them (not only the page's form)."""
    if request.allow_private_urls:
        require(workspace.principal, "private_urls")


def _in_background(job: _Job, resumed: bool) -> None:
    def carry_out() -> None:
        try:
            _carry_out(job, resumed)
        except Exception:  # noqa: BLE001 (the run record holds the error; a thread has no one to tell)
            log.exception("exploration %s failed", job.run.id)

    threading.Thread(target=carry_out, name=f"explore-{job.run.id}", daemon=True).start()


def resume_exploration(workspace: Workspace, run_id: str, cancel: threading.Event | None = None) -> ExploreSummary:
    """Continue a stopped (cancelled, interrupted or failed) website exploration from its stored steps."""
    return _carry_out(_resumable(workspace, run_id, cancel), resumed=True)


def _resumable(workspace: Workspace, run_id: str, cancel: threading.Event | None) -> _Job:
    """The stopped exploration run, ready to carry out and claimed: marked running again only when it is
    not running (or the process that ran it is dead), in one write, so of two resumes one is refused."""
    require(workspace.principal, "generate")
    job = _job(workspace, _exploration_run(workspace, run_id), cancel)
    _require_private_urls(workspace, job.request)
    if not workspace.store.claim_run(run_id, _claimable, status="running", finished_at=None, error=None,
                                     counts=_beating(job.run.counts)):
        raise TaskCraftError(f"The exploration {run_id} is already running.", hint="cancel it first, or wait for it")
    return job


def _claimable(run: GenerationRun) -> bool:
    return run.status != "running" or looks_dead(run)


@dataclass(frozen=True)
class _Job:
    """What carrying out an exploration run needs, built before the run is marked running."""

    workspace: Workspace
    run: GenerationRun
    request: ExploreRequest
    ctx: GenerationContext
    limits: BrowserLimits


def _job(workspace: Workspace, run: GenerationRun, cancel: threading.Event | None) -> _Job:
    settings = workspace.settings
    request = ExploreRequest(**run.config.settings[EXPLORE_KEY])
    engine = make_engine(settings, run.config.engine)
    ctx = GenerationContext(workspace=workspace, engine=engine, usage=Usage(), run_id=run.id,
                            cancel=cancel or threading.Event(), acceptance=AcceptanceRule.from_settings(settings))
    limits = BrowserLimits.from_settings(settings, same_site=request.same_site, max_pages=request.max_pages,
                                         max_seconds=request.max_seconds,
                                         allow_private_urls=request.allow_private_urls)
    return _Job(workspace, run, request, ctx, limits)


def exploration_summary(workspace: Workspace, run_id: str) -> ExploreSummary:
    """The summary of a stored website exploration run (what a page shows after or during it)."""
    run = _exploration_run(workspace, run_id)
    tasks = workspace.store.get_tasks(workspace.store.list_task_ids(TaskFilter(run_ids=[run_id])),
                                      with_trajectory=False)
    steps = workspace.store.exploration_steps(run_id, screenshots=False)
    info = run.config.settings.get("explore_outcome", {})
    return _summary(run, ExploreRequest(**run.config.settings[EXPLORE_KEY]), tasks,
                    pages=len({s.fingerprint for s in steps if s.fingerprint}),
                    interactions=sum(s.action in ("type_and_submit", "select_option") and not s.error for s in steps),
                    steps=len(steps), stopped=info.get("stopped", ""), refused=info.get("refused", 0),
                    problems=info.get("problems", []), functions=info.get("functions", []))


def _carry_out(job: _Job, resumed: bool) -> ExploreSummary:
    workspace, run, request, ctx, limits = job.workspace, job.run, job.request, job.ctx, job.limits
    settings = workspace.settings
    tasks: list[Task] = []
    exploration: SiteExploration | None = None
    status = "cancelled"  # until the exploration says otherwise
    try:
        with _CancelWatcher(workspace, run.id, ctx.cancel), \
                BrowserSession(request.start_url, settings, limits) as session:
            exploration = explore_site(request.start_url, ctx, session, steps_per_turn=request.steps_per_turn,
                                       resumed=rebuild_exploration(ctx, request.start_url) if resumed else None)
            if exploration.stopped != "cancelled":
                _write_tasks(exploration, ctx, session, request, limits, tasks)
            status = "cancelled" if exploration.stopped == "cancelled" else "completed"
    except GenerationCancelled:
        status = "cancelled"
    except BaseException as error:
        _finish(workspace, run, exploration, tasks, ctx, "cancelled" if isinstance(error, KeyboardInterrupt)
                else "failed", str(error))
        raise
    return _finish(workspace, run, exploration, tasks, ctx, status, None)


def _write_tasks(exploration: SiteExploration, ctx: GenerationContext, session: BrowserSession,
                 request: ExploreRequest, limits: BrowserLimits, tasks: list[Task]) -> None:
    """Tasks from the exploration, executed in the same browser with the settings' budget per task and
    within the run's page cap, appended to `tasks` as they are made (what `_finish` stores whatever
    happens next)."""
    settings = ctx.workspace.settings
    session.limits = limits.model_copy(update={"max_pages": settings.explore_task_max_pages,
                                               "max_seconds": settings.explore_task_max_seconds})
    generate_goal_tasks(exploration, ctx, session, guidelines=request.guidelines,
                        per_guideline=request.tasks_per_guideline, into=tasks,
                        max_run_pages=settings.explore_run_max_pages)


def _gated(workspace: Workspace, task: Task) -> Task:
    """A verified website task through the near-duplicate gate, like every generated task."""
    # Here, not at the top: dedup loads when an exploration gates, not with the pages that list runs.
    from taskcraft_core.curate.dedup import gate_candidate, gate_outcome

    pair = gate_candidate(workspace, task)
    return task if pair is None else gate_outcome(workspace.settings, task, pair)


class _CancelWatcher:
    """Turns a cancel written on the run (by `cancel_run`, from any process) into the context's flag,
    and keeps the run's heartbeat (so no one takes a live exploration for one a dead process left): a
    thread reads the run's status every `poll_s` while the exploration runs."""

    def __init__(self, workspace: Workspace, run_id: str, flag: threading.Event, poll_s: float = 0.5) -> None:
        self.workspace, self.run_id, self.flag, self.poll_s = workspace, run_id, flag, poll_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, name=f"cancel-{run_id}", daemon=True)

    def __enter__(self) -> _CancelWatcher:
        self.beat()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def watch(self) -> None:
        last_beat = time.monotonic()
        while not self.done.wait(self.poll_s):
            try:
                if self.cancelled():
                    self.flag.set()
                    return
                if time.monotonic() - last_beat >= HEARTBEAT_INTERVAL_S:
                    self.beat()
                    last_beat = time.monotonic()
            except Exception:  # noqa: BLE001 (a database hiccup must not stop the heartbeat for good)
                log.exception("exploration %s: reading or beating the run failed; trying again", self.run_id)

    def cancelled(self) -> bool:
        run = self.workspace.store.get_run(self.run_id)
        return run is not None and run.status == "cancelled"

    def beat(self) -> None:
        run = self.workspace.store.get_run(self.run_id)
        if run is not None:
            self.workspace.store.update_run(self.run_id, counts=_beating(run.counts))


def _beating(counts: RunCounts) -> RunCounts:
    """The counts with a fresh heartbeat of this process."""
    return counts.model_copy(update={"stage": "explore", "heartbeat": utcnow(), "pid": os.getpid(),
                                     "host": socket.gethostname()})


def _finish(workspace: Workspace, run: GenerationRun, exploration: SiteExploration | None, tasks: Sequence[Task],
            ctx: GenerationContext, status: str, error: str | None) -> ExploreSummary:
    """Store the tasks (verified ones through the near-duplicate gate), the documents read and the
    outcome on the run, in one write."""
    tasks = [_gated(workspace, task) if task.status == "pending" else task for task in tasks]
    pages = [p.document_id for p in exploration.memory.pages] if exploration else []
    outcome = {
        "stopped": exploration.stopped if exploration else "", "refused": len(exploration.refused) if exploration
        else 0, "problems": exploration.problems if exploration else [],
        "functions": [f"{f.kind} {f.name}" for f in exploration.memory.functions] if exploration else []}
    config = run.config.model_copy(update={
        "document_ids": list(dict.fromkeys([*run.config.document_ids, *pages])),
        "settings": run.config.settings | {"explore_outcome": outcome}})
    stored = workspace.store.get_run(run.id) or run
    workspace.store.update_run(run.id, tasks, config=config)
    index_tasks(workspace, tasks)
    summary = exploration_summary(workspace, run.id)  # counts every task of the run, a resumed one's too
    funnel = {"explore_candidates": summary.candidates, "explore_accepted": summary.accepted,
              "explore_rejected": summary.candidates - summary.accepted}
    counts = RunCounts(stage="explore", done=1, total=1, funnel=funnel,
                       calls_by_step=dict(Counter(stored.counts.calls_by_step) + Counter(ctx.usage.by_step)))
    workspace.store.update_run(run.id, status=status, counts=counts, error=error, finished_at=utcnow(),
                               model_calls=stored.model_calls + ctx.usage.calls,
                               tokens=stored.tokens + ctx.usage.tokens)
    return summary.model_copy(update={"status": status})


def _summary(run: GenerationRun, request: ExploreRequest, tasks: Sequence[Task], *, pages: int, interactions: int,
             steps: int, stopped: str, refused: int, problems: list[str], functions: list[str]) -> ExploreSummary:
    by_family: dict[str, dict[str, int]] = {}
    for task in tasks:
        family = by_family.setdefault(guideline_of(task) or "", {"candidates": 0, "accepted": 0})
        family["candidates"] += 1
        family["accepted"] += task.status not in ("failed_verification", "duplicate", "rejected")
    return ExploreSummary(
        run_id=run.id, status=run.status, start_url=request.start_url, pages_visited=pages, interactions=interactions,
        steps=steps, candidates=len(tasks), accepted=sum(f["accepted"] for f in by_family.values()),
        by_family=by_family, functions=functions, stopped=stopped, refused=refused, problems=problems,
        engine=run.config.request.engine or run.config.engine)
