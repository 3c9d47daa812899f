"""Automatic pre-review checks: what a reviewer would otherwise have to spot by reading every task.

Five checks, each flagging a task with a short detail (`run_checks`):
- `answer_in_question`: the golden answer (or a part of a list answer) is written in the question,
  also as a number in words, in another date format, or with other case, spacing or punctuation;
- `answer_not_observed`: no tool observation of the trajectory shows the answer (the agent never saw it);
- `solvable_without_tools`: the trajectory has no tool call, or the model alone scored 1 or more;
- `hops_not_used`: fewer tool calls than the task's hops;
- `tool_args_invalid`: a call to a tool the studio does not have, or arguments its schema refuses.
They run when a task is made (generation, import) and again on demand (`recheck_tasks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from num2words import num2words
from pydantic import BaseModel, ValidationError

from taskcraft_core.agent.tools import tool_schemas
from taskcraft_core.generate.grounding import numbers_in
from taskcraft_core.generate.text import iso_date, normalise_answer
from taskcraft_core.schema import CHECK_NAMES as CHECK_NAMES  # where they are named; imported from here too
from taskcraft_core.schema import Task
from taskcraft_core.store import Store, TaskFilter

# Numbers up to this are common words ("one of", "two sides"): in words they count only beside their unit.
SMALL_NUMBER = 10
MAX_RUN = 4  # words of a question joined when looking for an answer written without its spaces
RECHECK_BATCH = 500


def run_checks(task: Task) -> dict[str, str]:
    """The checks the task fails, by name, each with what was found; {} for a clean task."""
    found = {name: check(task) for name, check in CHECKS.items()}
    return {name: detail for name, detail in found.items() if detail}


def with_checks(task: Task) -> Task:
    return task.model_copy(update={"checks": run_checks(task)})


def answer_parts(task: Task) -> list[str]:
    answers = [task.golden_answer] if isinstance(task.golden_answer, str) else list(task.golden_answer)
    return [answer for answer in answers if normalise_answer(answer)]


# ---- the checks ------------------------------------------------------------------------------


def answer_in_question(task: Task) -> str | None:
    for part in answer_parts(task):
        form = next((form for form in answer_forms(part) if _written_in(form, task.question)), None)
        if form is not None:
            return f"“{part}” is in the question" + (f" (as “{form}”)" if form != part else "")
    return None


def answer_not_observed(task: Task) -> str | None:
    observations = [step.observation for step in task.trajectory if step.type == "tool" and step.observation]
    unseen = [part for part in answer_parts(task) if not any(_observed(part, text) for text in observations)]
    if not unseen:
        return None
    if not observations:
        return f"the trajectory has no tool observation, so “{unseen[0]}” was never seen"
    return f"no tool observation shows “{unseen[0]}”"


def solvable_without_tools(task: Task) -> str | None:
    if not _tool_calls(task):
        return "the trajectory has no tool call"
    alone = task.verification.model_alone_score if task.verification else 0
    return f"the model alone scored {alone}" if alone >= 1 else None


def hops_not_used(task: Task) -> str | None:
    calls = len(_tool_calls(task))
    return f"{calls} tool call(s) for a {task.hops}-hop task" if calls < task.hops else None


def tool_args_invalid(task: Task) -> str | None:
    schemas = tool_schemas()
    for step in _tool_calls(task):
        name, args = step.tool or "", step.args or {}
        if name not in schemas:
            return f"call to {name!r}, a tool the studio does not have"
        problem = _invalid(schemas[name], args)
        if problem:
            return f"{name}: {problem}"
    return None


CHECKS: dict[str, Callable[[Task], str | None]] = {
    "answer_in_question": answer_in_question, "answer_not_observed": answer_not_observed,
    "solvable_without_tools": solvable_without_tools, "hops_not_used": hops_not_used,
    "tool_args_invalid": tool_args_invalid,
}


# ---- helpers ---------------------------------------------------------------------------------


def answer_forms(answer: str) -> list[str]:
    """The answer as written, its numbers in words ('forty metres', 'eighteen eighty-nine') and a
    date in numeric day/month orders; case, spacing and punctuation are handled by the matching."""
    forms = [answer]
    iso = iso_date(answer) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", answer.strip()) else None
    if iso:
        year, month, day = (int(part) for part in iso.split("-"))
        forms += [f"{day}/{month}/{year}", f"{month}/{day}/{year}", f"{day:02d}/{month:02d}/{year}",
                  f"{month:02d}/{day:02d}/{year}", f"{day}.{month}.{year}"]
        return forms
    for number in re.findall(r"\d+(?:\.\d+)?", answer.replace(",", "")):
        rest = re.sub(rf"\b{re.escape(number)}\b", "", answer.replace(",", "")).strip()
        for words in _number_words(number):
            if rest:
                forms.append(f"{words} {rest}")
            if float(number) > SMALL_NUMBER and not rest or float(number) > SMALL_NUMBER and len(rest) <= 2:
                forms.append(words)
    return list(dict.fromkeys(forms))


def _number_words(number: str) -> list[str]:
    value = float(number)
    words = [num2words(int(value)) if value.is_integer() else num2words(value)]
    if value.is_integer() and 1000 < value < 2100:
        words.append(num2words(int(value), to="year"))  # 1889: "eighteen eighty-nine"
    words += [w.replace(" and ", " ") for w in words if " and " in w]  # "one thousand sixty-three"
    return words


def _written_in(form: str, text: str) -> bool:
    """Normalised match (dates, numbers, case, punctuation), or the same letters and digits across
    up to MAX_RUN consecutive words ('Humpback-65B' for 'Humpback65B', 'JonasVell' for 'Jonas Vell')."""
    needle = normalise_answer(form)
    if needle and re.search(rf"(?<![\w]){re.escape(needle)}(?![\w])", _normal(text)):
        return True
    target = _squash(form)
    if len(target) < 4 or target not in _squash(text):  # a cheap test first: observations are long
        return False
    words = _squashed_words(text)
    return any("".join(words[i:j]) == target for i in range(len(words))
               for j in range(i + 1, min(i + MAX_RUN, len(words)) + 1))


@lru_cache(maxsize=64)
def _normal(text: str) -> str:
    """normalise_answer, remembered: every answer form is looked for in the same few long texts."""
    return normalise_answer(text)


@lru_cache(maxsize=64)
def _squashed_words(text: str) -> list[str]:
    return [squashed for word in re.split(r"[\s/]+", text) if (squashed := _squash(word))]


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", _normal(text))


def _observed(answer: str, observation: str) -> bool:
    """Shown in the observation: as written (normalised), or, for a quantity whose unit the source
    spells differently, with all of its numbers."""
    if re.search(rf"(?<!\w){re.escape(answer.strip())}(?!\w)", observation, re.IGNORECASE):
        return True  # the common case, without normalising a long observation
    if _written_in(answer, observation):
        return True
    wanted = numbers_in(answer)
    return bool(wanted) and wanted <= numbers_in(observation)


def _tool_calls(task: Task) -> list:
    return [step for step in task.trajectory if step.type == "ai" and step.tool]


def _invalid(schema: type[BaseModel], args: dict) -> str | None:
    if "raw_arguments" in args:
        return f"arguments are not valid JSON: {str(args['raw_arguments'])[:80]!r}"
    try:
        schema.model_validate(args)
    except ValidationError as error:
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'arguments'}: {first['msg']}"
    return None


# ---- on demand -------------------------------------------------------------------------------


class CheckReport(BaseModel):
    """What a re-check found: how many tasks were checked, and the flagged ones with their checks."""

    checked: int
    flagged: dict[str, list[str]]


def recheck_tasks(store: Store, task_filter: TaskFilter | None = None) -> CheckReport:
    """Run the checks again on every matching task and store the results."""
    checked, flagged = 0, {}
    for batch in _batches(store.iter_tasks(task_filter or TaskFilter())):
        results = {task.id: run_checks(task) for task in batch}
        store.set_task_checks(results)
        checked += len(batch)
        flagged.update({task_id: list(found) for task_id, found in results.items() if found})
    return CheckReport(checked=checked, flagged=flagged)


def _batches(tasks: Iterator[Task]) -> Iterator[list[Task]]:
    batch: list[Task] = []
    for task in tasks:
        batch.append(task)
        if len(batch) == RECHECK_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
