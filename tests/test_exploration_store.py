"""Exploration steps are data of their run: stored in order with small screenshots, read back with
or without them, replaced on resume, deleted with the run; explore tasks keep their guideline family."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from taskcraft_core.schema import ExplorationStep, GenerationRun, Task, guideline_of
from taskcraft_core.store import Store
from taskcraft_core.store import tables as t

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def step(position: int, **changes: object) -> ExplorationStep:
    values: dict[str, object] = dict(run_id="r1", position=position, url=f"http://127.0.0.1/p{position}.html",
                                     title=f"Page {position}", action="open_link", args={"number": position},
                                     observation=f"seen {position}", learned=f"new state p{position}",
                                     fingerprint=f"f{position}", screenshot=JPEG)
    values.update(changes)
    return ExplorationStep(**values)


@pytest.fixture
def run_store(store: Store) -> Store:
    store.save_run(GenerationRun(id="r1"))
    return store


def test_steps_come_back_in_order_with_their_screenshots(run_store: Store) -> None:
    run_store.add_exploration_steps([step(1, action="type_and_submit", args={"field": 1, "text": "json"}), step(0)])
    steps = run_store.exploration_steps("r1")
    assert [(s.position, s.action, s.args) for s in steps] == [
        (0, "open_link", {"number": 0}), (1, "type_and_submit", {"field": 1, "text": "json"})]
    assert steps[1].screenshot == JPEG and steps[1].learned == "new state p1"
    assert [s.screenshot for s in run_store.exploration_steps("r1", screenshots=False)] == [None, None]
    assert run_store.exploration_screenshot("r1", 1) == JPEG
    assert run_store.exploration_screenshot("r1", 7) is None
    assert len(run_store.exploration_steps("r1", screenshots=False)) == 2 and run_store.exploration_steps("other") == []


def test_a_resumed_exploration_replaces_a_step_at_the_same_position(run_store: Store) -> None:
    run_store.add_exploration_steps([step(0), step(1, error="no answer within 2 s")])
    run_store.add_exploration_steps([step(1, url="http://127.0.0.1/again.html")])
    steps = run_store.exploration_steps("r1")
    assert [(s.url, s.error) for s in steps] == [("http://127.0.0.1/p0.html", None),
                                                 ("http://127.0.0.1/again.html", None)]


def test_steps_go_with_their_run(run_store: Store) -> None:
    run_store.add_exploration_steps([step(0)])
    with run_store.engine.begin() as c:
        c.exec_driver_sql("PRAGMA foreign_keys=ON")
        c.execute(delete(t.runs).where(t.runs.c.id == "r1"))
    assert run_store.exploration_steps("r1") == []


def test_explore_tasks_keep_their_family_and_old_ones_read_it_from_relation(store: Store) -> None:
    common = dict(kind="explore", question="Q?", golden_answer="a", content_identifier="Start", engine="offline",
                  model="offline")
    store.add_tasks([Task(id="new", relation="feature_use", guideline="feature_use", **common),
                     Task(id="old", relation="retrieval", **common),
                     Task(id="atomic", **common | {"kind": "atomic"}, relation="the year of x")])
    tasks = {task.id: task for task in store.get_tasks(["new", "old", "atomic"])}
    assert tasks["new"].guideline == "feature_use" and tasks["old"].guideline is None
    assert [guideline_of(tasks[i]) for i in ("new", "old", "atomic")] == [
        "feature_use", "information_retrieval", None]
