"""The records of the studio: one pydantic model per kind.

The database (`store.py`) persists them; everything else passes these models around.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1

TaskKind = Literal["atomic", "depth", "width", "explore"]
TaskStatus = Literal["failed_verification", "pending", "accepted", "rejected", "duplicate"]
TASK_STATUSES: tuple[TaskStatus, ...] = ("failed_verification", "pending", "accepted", "rejected", "duplicate")
TASK_KINDS: tuple[TaskKind, ...] = ("atomic", "depth", "width", "explore")
# The automatic pre-review checks (`generate.checks`), named here so a filter can list them without
# importing what the checks need (the agent's tool schemas, LangChain).
CHECK_NAMES: tuple[str, ...] = (
    "answer_in_question", "answer_not_observed", "solvable_without_tools", "hops_not_used", "tool_args_invalid",
)
Decision = Literal["accept", "reject", "edit", "undo", "duplicate"]
StepType = Literal["human", "ai", "tool", "system"]
RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def content_id(*parts: str, length: int = 16) -> str:
    """A stable id from content, so re-runs and re-imports are idempotent."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


class Document(BaseModel):
    """One ingested source: a file, a page or an archive member."""

    id: str
    source: str = Field(description="File name, archive path or URL the document came from.")
    content_hash: str = Field(description="sha256 of the extracted text; re-ingesting it is a no-op.")
    title: str = Field(description="The content identifier: what the document is about, named as a reader would "
                       "search for it (its H1, else its title without the site's affixes, else its first heading "
                       "or file name).")
    aliases: list[str] = Field(default_factory=list, description="Other names of the same subject (parts of the "
                               "heading, the stripped title, 'json module'); backward search looks for them too.")
    page_title: str | None = Field(None, description="The title as the file wrote it (<title>, PDF metadata).")
    heading: str | None = Field(None, description="The main heading (HTML h1, first line of a PDF).")
    site_name: str | None = Field(None, description="The site or collection name the page declares (og:site_name).")
    doc_type: Literal["pdf", "html", "text", "markdown"]
    text: str
    pages: int = 1
    page_offsets: list[int] = Field(default_factory=lambda: [0], description="Start offset of each page.")
    links: list[str] = Field(default_factory=list, description="Outgoing links, kept for exploration.")
    created_at: datetime = Field(default_factory=utcnow)


class Chunk(BaseModel):
    """A slice of a document's text with its character offsets into that text."""

    id: str
    document_id: str
    position: int
    text: str
    page: int = 1
    start: int
    end: int


class TrajectoryStep(BaseModel):
    """One message of an agent trajectory, in order."""

    position: int
    type: StepType
    content: str = ""
    tool: str | None = None
    args: dict[str, Any] | None = None
    observation: str | None = None
    latency_ms: float = 0.0
    tokens: int = 0
    hop: int = 0


class Verification(BaseModel):
    """Both answers and their judge scores (0 missing/contradicting, 1 all plus extra, 2 same)."""

    model_alone_answer: str = ""
    model_alone_score: int = 0
    agent_answer: str = ""
    agent_score: int = 0
    judge_rationale: str = ""
    agent_steps: int = 0


class Task(BaseModel):
    """A generated question with its golden answer, evidence, trajectory and verification."""

    id: str
    kind: TaskKind
    question: str
    golden_answer: str | list[str]
    content_identifier: str
    relation: str = ""
    hops: int = 1
    width: int = 1
    difficulty: int = 1
    difficulty_inputs: dict[str, Any] = Field(default_factory=dict)
    engine: str
    model: str
    status: TaskStatus = "pending"
    failure_reason: str | None = None
    document_id: str | None = None
    chunk_id: str | None = None
    span_start: int | None = Field(None, description="Offset of the answer's evidence in the document text.")
    span_end: int | None = None
    parent_ids: list[str] = Field(default_factory=list)
    regenerated_from: str | None = Field(None, description="The rejected task this one was regenerated from.")
    regeneration_reason: str | None = Field(None, description="The reviewer's reason given to the generator.")
    stale: bool = Field(False, description="A replay found that the golden answer no longer holds.")
    run_id: str | None = None
    model_calls: int = 0
    tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    trajectory: list[TrajectoryStep] = Field(default_factory=list)
    verification: Verification | None = None
    checks: dict[str, str] | None = Field(
        None, description="Automatic pre-review checks the task failed (name -> detail); {} clean, None never checked.")
    guideline: str | None = Field(
        None, description="The guideline family an explore task was written for (GUIDELINE_FAMILIES); None for "
        "other kinds. Explore tasks stored before the column existed read it from `relation` (see guideline_of).")


# AutoPlay's guideline families (METHOD §2). Exploration tasks stored before "feature_use" existed
# called information retrieval "retrieval": LEGACY_GUIDELINES maps such names when they are read.
GUIDELINE_FAMILIES: tuple[str, ...] = ("feature_use", "information_retrieval", "navigation", "composition",
                                       "repetition")
LEGACY_GUIDELINES: dict[str, str] = {"retrieval": "information_retrieval"}


def guideline_name(name: str) -> str:
    """The current name of a guideline family (an old stored name mapped; others as they are)."""
    return LEGACY_GUIDELINES.get(name, name)


def guideline_of(task: Task) -> str | None:
    """The family an explore task was written for: its `guideline`, else (stored before the column
    existed) its relation, which then held the family; None for tasks of other kinds."""
    if task.guideline:
        return guideline_name(task.guideline)
    if task.kind == "explore" and task.relation:
        return guideline_name(task.relation)
    return None


class ExplorationStep(BaseModel):
    """One step of a live-website exploration, stored with its run (a stepper shows them in order):
    the action the explorer took, the page it led to, what the step taught its memory, and a small
    screenshot of the page after the step (JPEG bytes; the database owns them)."""

    run_id: str
    position: int = Field(description="0, 1, 2, ... in the order the steps were taken.")
    turn: int = Field(1, description="The exploration turn (memory is summarised after each).")
    url: str = Field(description="The page the browser showed after the step.")
    title: str = ""
    action: str = Field(description="The tool: open_url (the start), open_link, go_back, read_page, type_and_submit, "
                        "select_option.")
    args: dict[str, Any] = Field(default_factory=dict)
    observation: str = Field("", description="The text the tool returned (capped).")
    learned: str = Field("", description="What the step added to the memory: a new state, a function, facts.")
    fingerprint: str | None = Field(None, description="Content fingerprint of the state reached (same page, same "
                                    "content: same fingerprint).")
    document_id: str | None = Field(None, description="The page stored as a document of the run, when it was read.")
    error: str | None = Field(None, description="Why the step failed (a page that never loaded, a refused URL).")
    screenshot: bytes | None = Field(None, description="A small JPEG of the page after the step (640 px wide).")
    created_at: datetime = Field(default_factory=utcnow)


class Replay(BaseModel):
    """One re-run of the solving agent on a stored task against the current corpus, judged against
    the golden answer; the task's own trajectory stays as it was, this one is kept beside it."""

    id: int | None = None
    task_id: str
    answer: str
    score: int = Field(ge=0, le=2)
    holds: bool = Field(description="The acceptance rule accepts the new answer: the task is still valid.")
    judge_rationale: str = ""
    tool_steps: int = 0
    trajectory: list[TrajectoryStep] = Field(default_factory=list)
    engine: str
    model: str
    created_at: datetime = Field(default_factory=utcnow)


class Review(BaseModel):
    """One decision by a person; append-only, each row supersedes the previous one of its task."""

    id: int | None = None
    task_id: str
    reviewer: str
    decision: Decision
    reason: str = ""
    edits: dict[str, Any] = Field(default_factory=dict)
    supersedes_id: int | None = None
    seen_review_id: int | None = Field(
        None, description="The review the decision was made on (the state the reviewer saw; None: undecided)."
    )
    override: bool = Field(False, description="Recorded knowingly over a state that had changed since it was seen.")
    adjudication: bool = Field(False, description="An adjudicator's final decision on a disputed task.")
    created_at: datetime = Field(default_factory=utcnow)
    imported: Literal["history", "decision"] | None = Field(
        None, description="Came in with an import: history (kept for the record, not in force) or decision "
        "(imported as it was by an admin, in force); None when decided here.")


class RunRequest(BaseModel):
    """What a person asks a run to do: by default every kind (stage) from every document (empty
    `document_ids`)."""

    kinds: list[str] = list(TASK_KINDS)
    document_ids: list[str] = []
    limit: int | None = None
    engine: str | None = None
    model: str | None = None
    base_url: str | None = None
    concurrency: int | None = None


class RunConfig(BaseModel):
    """The snapshot a run is created with and resumed with: the request, the resolved documents,
    the engine, model names, base URL (never a key), the prompt version and the settings that shape
    the output."""

    request: RunRequest = Field(default_factory=RunRequest)
    document_ids: list[str] = []
    engine: Literal["offline", "openai"] = "offline"
    models: dict[str, str] = {}
    base_url: str | None = None
    prompt_version: str = ""
    settings: dict[str, Any] = Field(default_factory=dict, description="Snapshot of the run-shaping settings.")
    resumes: list[dict[str, str]] = Field(
        default_factory=list, description="Each resume: who, when, and the endpoint used (the resumer's own).")
    workers: Literal["inline", "queue"] = Field("inline", description="Where the run executes (settings.workers).")


class UnitError(BaseModel):
    """A work unit that failed (retried on resume), with the error."""

    unit: str
    error: str


class EmptyUnit(BaseModel):
    """A work unit that had nothing to give (a chunk without facts), with the reason; not retried."""

    unit: str
    reason: str


class RunCounts(BaseModel):
    """Where a run is: its stage, units done of that stage, the funnel per kind, unit errors, and a
    heartbeat naming the process executing it (so a dead one is noticed)."""

    stage: str = ""
    done: int = 0
    total: int = 0
    funnel: dict[str, int] = {}
    errors: list[UnitError] = []
    empty_units: list[EmptyUnit] = []
    calls_by_step: dict[str, int] = Field(
        default_factory=dict, description="Model calls per '<stage>.<step>' (atomic.question, depth.auxiliary.agent).")
    # Queue execution: units of the stage handed to workers and not finished, and the endpoint
    # failures in a row across workers (the inline executor keeps both in memory).
    pending: list[str] = []
    unavailable_streak: int = 0
    heartbeat: datetime | None = None
    pid: int | None = None
    host: str | None = None


class GenerationRun(BaseModel):
    """One generation run: what it was asked to do, how far it got, and what it cost."""

    id: str
    config: RunConfig = Field(default_factory=RunConfig)
    status: RunStatus = "running"
    counts: RunCounts = Field(default_factory=RunCounts)
    done_units: list[str] = Field(default_factory=list, description="Work units finished, for resume.")
    error: str | None = None
    model_calls: int = 0
    tokens: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
