"""Import tasks: our own JSONL export back, and the output records of the reference TaskCraft library.

A bad line is reported with its line number and the rest of the file still imports; tasks whose id
is already stored are skipped, so re-importing a file is a no-op.

Imported tasks come in as "pending": a file's status and decisions are claims nobody here checked.
Every decision a record carries (`reviews`: reviewer, decision, reason, edits, time, override,
adjudication; or, in records without `reviews`, the decision in force `review`) is kept in order as
the task's history, marked imported ("history": shown, never in force), and the record's status is
kept in difficulty_inputs["imported"]["status"]. An admin may import decisions as they are
(`keep_decisions`): then they are in force, marked imported ("decision"), so status, votes, reviewer
and edits round-trip and export again unchanged; a task that carries an accept, reject or duplicate
decision starts from "pending" (its status before the people decided), one with only edits keeps
the record's status. Every import is in the audit log.
An id that is not a plain identifier (`TASK_ID`: letters, digits, `_ . : -`, at most 32 characters,
the width of the id column) is replaced by a content id derived from it, parent links alike, and
the original is kept in difficulty_inputs["imported"]["id"].

Reference format (OPPO-PersonalAI/TaskCraft, `taskcraft` 0.3 on PyPI, and the PersonalAILab/TaskCraft
dataset on the Hugging Face Hub) -> our Task:

| reference field                                   | our field                                        |
|---------------------------------------------------|--------------------------------------------------|
| question, or query (dataset)                      | question                                         |
| golden_answer, or answer; golden_answers (width)  | golden_answer (a list for width tasks)           |
| content_identifier, or identifier                 | content_identifier                               |
| model_id                                          | model ("unknown" when absent)                    |
| valid_hop                                         | hops (and difficulty: the reference grades by hops) |
| agent_trajectory [{name, value, think, obs}]      | trajectory: facts/plan/reflection -> ai steps;   |
|                                                   | action -> a tool step (name/arguments parsed from the |
|                                                   | action when it is JSON)                          |
| trajectory [{sub_query, sub_answer,               | trajectory, one hop per sub-query (human step,   |
|   sub_trajectory}] (depth)                        | then its steps)                                  |
| agent_result, agent_score, agent_step_number      | verification.agent_answer, agent_score (rounded), agent_steps |
| llm_result, llm_score                             | verification.model_alone_answer, model_alone_score (rounded) |
| original_questions, index, qa_index, tool, domain, anything else | difficulty_inputs["imported"] (kept verbatim) |

Kind: width when the record has golden_answers or original_questions, depth when it has more than
one hop, else atomic. Status: pending (a person has not reviewed it here). Engine: "import".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ValidationError

from taskcraft_core.access import require
from taskcraft_core.curate.records import IMPORTED_KEY
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.generate.checks import with_checks
from taskcraft_core.index.task_vectors import index_tasks
from taskcraft_core.schema import Review, Task, TrajectoryStep, Verification, content_id, guideline_name
from taskcraft_core.store import TaskFilter
from taskcraft_core.store.review_history import DECISION_STATUS
from taskcraft_core.workspace import Workspace

ImportFormat = Literal["jsonl", "taskcraft"]
IMPORT_BATCH = 1000
MAX_REPORTED_ERRORS = 1000
TASK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,32}")
IMPORTED_DECISIONS = ("accept", "reject", "edit", "duplicate")  # an undo is never the decision in force
HISTORY_DECISIONS = (*IMPORTED_DECISIONS, "undo")


class ImportReport(BaseModel):
    """How an import went: tasks added, tasks already stored, and one message per bad line."""

    added: int = 0
    skipped: int = 0
    errors: list[str] = []


class BadRecord(ValueError):
    """A line that is JSON but not a task this format can read."""


class ImportedTask(NamedTuple):
    """A task read from one record, with the decisions the record carries, oldest first."""

    task: Task
    reviews: Sequence[Review] = ()


# ---- our own records ----------------------------------------------------------------------------


def _our_step(position: int, step: dict[str, Any]) -> TrajectoryStep:
    return TrajectoryStep(position=position, type=step.get("type", "ai"), content=step.get("content") or "",
                          tool=step.get("tool"), args=step.get("args"), observation=step.get("observation"))


def safe_task_id(raw: Any) -> str:
    """The id itself when it is a plain identifier, else a content id derived from it (stable, so
    parent links to it map the same way)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    return text if TASK_ID.fullmatch(text) else content_id("imported-id", text)


def _imported_review(task_id: str, review: Any, decisions: Sequence[str] = IMPORTED_DECISIONS) -> Review:
    if not isinstance(review, dict) or review.get("decision") not in decisions:
        raise BadRecord(f"review must be an object with a decision among {', '.join(decisions)}")
    values = {"task_id": task_id, "reviewer": review.get("reviewer") or "", "decision": review["decision"],
              "reason": review.get("reason") or "", "edits": review.get("edits") or {},
              "override": bool(review.get("override")), "adjudication": bool(review.get("adjudication"))}
    if not str(values["reviewer"]).strip():
        raise BadRecord("review has no reviewer")
    return Review(**values, **({"created_at": review["time"]} if review.get("time") else {}))


def _imported_reviews(task_id: str, record: dict[str, Any]) -> list[Review]:
    """The whole history when the record has one (undos included), else its decision in force."""
    history = record.get("reviews")
    if history is not None:
        if not isinstance(history, list):
            raise BadRecord("reviews must be a list of decisions")
        return [_imported_review(task_id, review, HISTORY_DECISIONS) for review in history]
    review = record.get("review")
    return [] if review is None else [_imported_review(task_id, review)]


def task_from_record(record: dict[str, Any]) -> ImportedTask:
    """A Task from one record of our JSONL contract, with the decision in force it carries."""
    for key in ("id", "kind", "question", "golden_answer"):
        if key not in record:
            raise BadRecord(f"missing field {key!r}")
    source = record.get("source") or {}
    answer = record["golden_answer"]
    check = record.get("verification")
    task_id = safe_task_id(record["id"])
    imported: dict[str, Any] = {}  # what has no field of its own: the source's title, a replaced id
    if source.get("title"):
        imported["source_title"] = source["title"]
    if task_id != record["id"]:
        imported["id"] = record["id"]
    reviews = _imported_reviews(task_id, record)
    status = record.get("status", "pending")
    task = Task(
        id=task_id, kind=record["kind"], question=record["question"], golden_answer=answer,
        content_identifier=record.get("content_identifier") or "", relation=record.get("relation") or "",
        guideline=guideline_name(record["guideline"]) if isinstance(record.get("guideline"), str) else None,
        hops=record.get("hops", 1), width=len(answer) if isinstance(answer, list) else 1,
        difficulty=record.get("difficulty", 1), engine=record.get("engine") or "import",
        model=record.get("model") or "unknown",
        status="pending" if any(review.decision in DECISION_STATUS for review in reviews) else status,
        document_id=source.get("document_id"), chunk_id=source.get("chunk_id"),
        span_start=source.get("start"), span_end=source.get("end"),
        parent_ids=[safe_task_id(parent) for parent in record.get("parents") or []],
        difficulty_inputs={IMPORTED_KEY: imported} if imported else {},
        trajectory=[_our_step(i, step) for i, step in enumerate(record.get("trajectory") or [])],
        verification=Verification(**check) if check else None,
    )
    return ImportedTask(task, reviews)


# ---- reference TaskCraft records ----------------------------------------------------------------

_REFERENCE_FIELDS = {
    "question", "query", "golden_answer", "answer", "golden_answers", "content_identifier", "identifier",
    "model_id", "valid_hop", "agent_trajectory", "trajectory", "agent_result", "agent_score",
    "agent_step_number", "llm_result", "llm_score",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False)


def _score(value: Any) -> int:
    """The reference averages judge votes (floats, or None when judging failed); ours are 0/1/2."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    return max(0, min(2, round(float(value))))


def _parse_action(value: Any) -> tuple[str | None, dict[str, Any] | None]:
    """Tool name and arguments from a reference action, when it states them as JSON."""
    if isinstance(value, str):
        start, end = value.find("{"), value.rfind("}")
        if start < 0 or end < start:
            return None, None
        try:
            value = json.loads(value[start : end + 1])
        except json.JSONDecodeError:
            return None, None
    if isinstance(value, dict):
        name = value.get("name") or value.get("tool_name")
        args = value.get("arguments", value.get("tool_arguments"))
        if isinstance(name, str):
            return name, args if isinstance(args, dict) else {"input": args} if args is not None else {}
    return None, None


def _reference_steps(steps: Any, hop: int) -> Iterator[TrajectoryStep]:
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        name, think = step.get("name", ""), _text(step.get("think"))
        if name == "action":
            tool, args = _parse_action(step.get("value"))
            content = think if tool else "\n".join(p for p in (think, _text(step.get("value"))) if p)
            yield TrajectoryStep(position=0, type="tool" if tool else "ai", content=content, tool=tool, args=args,
                                 observation=_text(step.get("obs")) if tool else None, hop=hop)
            if not tool and step.get("obs") is not None:
                yield TrajectoryStep(position=0, type="tool", tool="action", observation=_text(step["obs"]), hop=hop)
        else:
            body = "\n".join(p for p in (think, _text(step.get("value"))) if p)
            yield TrajectoryStep(position=0, type="ai", content=f"[{name}] {body}".strip(), hop=hop)


def _reference_trajectory(record: dict[str, Any]) -> list[TrajectoryStep]:
    steps: list[TrajectoryStep] = []
    hops = record.get("trajectory")
    if isinstance(hops, list) and hops and isinstance(hops[0], dict) and "sub_query" in hops[0]:
        for hop, sub in enumerate(hops):
            steps.append(TrajectoryStep(position=0, type="human", content=_text(sub.get("sub_query")), hop=hop))
            steps.extend(_reference_steps(sub.get("sub_trajectory"), hop))
    else:
        steps.extend(_reference_steps(record.get("agent_trajectory"), 0))
    return [step.model_copy(update={"position": i}) for i, step in enumerate(steps)]


def task_from_reference(record: dict[str, Any]) -> ImportedTask:
    """A Task from one output record of the reference TaskCraft library or dataset (which has no reviews)."""
    question = record.get("question") or record.get("query")
    answers = record.get("golden_answers")
    answer = answers if isinstance(answers, list) and answers else record.get("golden_answer", record.get("answer"))
    if not isinstance(question, str) or not question.strip():
        raise BadRecord("no question (expected 'question' or 'query')")
    if answer is None or answer == "" or answer == []:
        raise BadRecord("no answer (expected 'golden_answer', 'answer' or 'golden_answers')")
    answer = [_text(a) for a in answer] if isinstance(answer, list) else _text(answer)
    steps = _reference_trajectory(record)
    depth_hops = len(record["trajectory"]) if any(s.hop for s in steps) else 1
    hops = int(record.get("valid_hop") or depth_hops)
    width = isinstance(answers, list) or "original_questions" in record
    has_check = any(k in record for k in ("agent_result", "agent_score", "llm_result", "llm_score"))
    return ImportedTask(Task(
        id=content_id("taskcraft", question, json.dumps(answer, ensure_ascii=False)),
        kind="width" if width else "depth" if hops > 1 else "atomic", question=question, golden_answer=answer,
        content_identifier=_text(record.get("content_identifier") or record.get("identifier")),
        hops=hops, width=len(answer) if isinstance(answer, list) else 1, difficulty=max(1, hops),
        difficulty_inputs={IMPORTED_KEY: {k: v for k, v in record.items() if k not in _REFERENCE_FIELDS}},
        engine=_text(record.get("engine")) or "import", model=_text(record.get("model_id")) or "unknown",
        status="pending", trajectory=steps,
        verification=Verification(
            model_alone_answer=_text(record.get("llm_result")), model_alone_score=_score(record.get("llm_score")),
            agent_answer=_text(record.get("agent_result")), agent_score=_score(record.get("agent_score")),
            agent_steps=int(record.get("agent_step_number") or 0),
        ) if has_check else None,
    ))


READERS: dict[str, Callable[[dict[str, Any]], ImportedTask]] = {
    "jsonl": task_from_record, "taskcraft": task_from_reference,
}


# ---- the import ---------------------------------------------------------------------------------


def _parse_lines(
    path: Path, reader: Callable[[dict[str, Any]], ImportedTask], report: ImportReport,
) -> Iterator[ImportedTask]:
    with path.open("r", encoding="utf-8-sig", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise BadRecord(f"expected a JSON object, got {type(record).__name__}")
                yield reader(record)
            except (json.JSONDecodeError, BadRecord, ValidationError, TypeError, ValueError) as error:
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(f"line {number}: {_describe(error)}")


def _describe(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg} at column {error.colno})"
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"invalid field {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error)


def import_tasks(workspace: Workspace, path: Path, fmt: ImportFormat, *, index: bool = False,
                 keep_decisions: bool = False) -> ImportReport:
    """Import a JSONL file of tasks in batches, as pending with their decisions kept as history; with
    `keep_decisions` (admins only) the decisions take effect as they are. With `index`, new tasks are
    embedded into the task index at once; by default the index catches up on first use
    (`dedup.sync_task_index`), which keeps a 36k-task import to the database write."""
    require(workspace.principal, "import_decisions" if keep_decisions else "import")
    if fmt not in READERS:
        raise TaskCraftError(f"Unknown import format {fmt!r}.", f"Choose one of: {', '.join(READERS)}.")
    path = Path(path)
    if not path.is_file():
        raise TaskCraftError(f"No file at {path}.", "Give the path of a .jsonl file.")
    report = ImportReport()
    batch: list[ImportedTask] = []
    for imported in _parse_lines(path, READERS[fmt], report):
        batch.append(as_imported(imported, keep_decisions))
        if len(batch) >= IMPORT_BATCH:
            _store(workspace, batch, report, index)
            batch = []
    _store(workspace, batch, report, index)
    workspace.audit("import", path.name, {"format": fmt, "added": report.added, "skipped": report.skipped,
                                          "errors": len(report.errors), "decisions": "in force" if keep_decisions
                                          else "kept as history"})
    return report


def as_imported(item: ImportedTask, keep_decisions: bool) -> ImportedTask:
    """The task and decisions as stored: pending with the decisions as history, or (keep_decisions)
    as given; either way every review is marked imported."""
    mark = "decision" if keep_decisions else "history"
    reviews = [review.model_copy(update={"imported": mark}) for review in item.reviews]
    if keep_decisions or item.task.status == "pending":
        return ImportedTask(item.task, reviews)
    inputs = dict(item.task.difficulty_inputs)
    inputs[IMPORTED_KEY] = {**inputs.get(IMPORTED_KEY, {}), "status": item.task.status}
    return ImportedTask(item.task.model_copy(update={"status": "pending", "difficulty_inputs": inputs}), reviews)


def _store(workspace: Workspace, batch: list[ImportedTask], report: ImportReport, index: bool) -> None:
    if not batch:
        return
    stored = set(workspace.store.list_task_ids(TaskFilter(task_ids=[item.task.id for item in batch])))
    first: dict[str, ImportedTask] = {}  # the first record of an id wins, with its own review
    for item in batch:
        if item.task.id not in stored:
            first.setdefault(item.task.id, item)
    new = [with_checks(item.task) for item in first.values()]
    added = workspace.store.add_tasks(new, [review for item in first.values() for review in item.reviews],
                                      reviews_per_task=workspace.settings.reviews_per_task)
    report.added += added
    report.skipped += len(batch) - added
    if index and new:
        index_tasks(workspace, new)
