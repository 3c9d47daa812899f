"""Exploration trajectories as data: a run's exploration steps exported as JSONL, one step per line,
in order. A step's screenshot (JPEG) goes into the line as base64 (`screenshot_base64`), or, when a
folder is given, into that folder as `<run>-<position>.jpg` with the line naming the file
(`screenshot_path`); a step without one has neither key set (null)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import ExplorationStep
from taskcraft_core.store import Store


def step_record(step: ExplorationStep, screenshot_dir: Path | None = None) -> dict[str, Any]:
    """The JSON record of one step (its screenshot as base64, or written to the folder)."""
    record: dict[str, Any] = step.model_dump(mode="json", exclude={"screenshot"})
    record["screenshot_base64"] = record["screenshot_path"] = None
    if step.screenshot and screenshot_dir is None:
        record["screenshot_base64"] = base64.b64encode(step.screenshot).decode("ascii")
    elif step.screenshot and screenshot_dir is not None:
        path = screenshot_dir / f"{step.run_id}-{step.position:04d}.jpg"
        path.write_bytes(step.screenshot)
        record["screenshot_path"] = str(path)
    return record


def exploration_jsonl(store: Store, run_id: str, screenshot_dir: Path | None = None) -> str:
    """The run's exploration steps as JSONL text, in order. A run without exploration steps is an
    error (nothing would be written)."""
    steps = store.exploration_steps(run_id)
    if not steps:
        raise TaskCraftError(f"The run {run_id} has no exploration steps.",
                             hint="explore a website first: python -m taskcraft_core explore START_URL")
    if screenshot_dir is not None:
        screenshot_dir.mkdir(parents=True, exist_ok=True)
    return "".join(json.dumps(step_record(step, screenshot_dir), ensure_ascii=False) + "\n" for step in steps)


def export_exploration(store: Store, run_id: str, out: Path, screenshot_dir: Path | None = None) -> int:
    """Write the run's exploration steps to `out` as JSONL (whole or not at all); returns how many."""
    text = exploration_jsonl(store, run_id, screenshot_dir)
    partial = out.with_name(out.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    return text.count("\n")
