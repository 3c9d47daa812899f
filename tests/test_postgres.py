"""The same store on a real PostgreSQL server, started for the test in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskcraft_core.errors import ReviewConflict
from taskcraft_core.store import Store, TaskFilter
from tests.servers import postgres_server
from tests.test_store import make_task

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_store_works_on_postgresql(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.add_tasks([make_task(i, kind="depth" if i % 2 else "atomic") for i in range(10)])
    assert store.count_tasks(TaskFilter(kinds=["depth"])) == 5
    assert store.count_tasks(TaskFilter(text="QUESTION 3")) == 1
    first = store.record_review("t003", "ann", "accept")
    with pytest.raises(ReviewConflict):
        store.record_review("t003", "bob", "reject", expected_latest=None)
    store.record_review("t003", "ann", "undo", expected_latest=first.id)
    task = Store(postgres_url).get_task("t003")
    assert task is not None and task.status == "pending"
    assert [s.observation for s in task.trajectory] == [None, "obs 3"]


def test_the_index_repair_lock_is_one_holder_across_connections_on_postgresql(postgres_url: str) -> None:
    first, second = Store(postgres_url), Store(postgres_url)  # two processes' stores: two connection pools
    with first.maintenance_lock("index-repair") as held:
        assert held
        with second.maintenance_lock("index-repair", wait=False) as also_held:
            assert not also_held
        with second.maintenance_lock("another", wait=False) as other_lock:
            assert other_lock
    with second.maintenance_lock("index-repair", wait=False) as held_after:
        assert held_after
