"""Difficulty-balanced export samples: largest-remainder counts, shortfalls, strata, seeds, CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from taskcraft_core.cli import main
from taskcraft_core.curate.export import export_tasks
from taskcraft_core.curate.sampling import SampleRequest, allocate, draw_sample, largest_remainder, parse_mix
from taskcraft_core.errors import TaskCraftError
from taskcraft_core.schema import Replay
from taskcraft_core.store import TaskFilter
from taskcraft_core.workspace import Workspace
from tests.curation_factory import make_task

MIX = {1: 0.4, 2: 0.3, 3: 0.2, 4: 0.1}


def pool(counts: dict[int, int], kind: str = "atomic") -> list[dict[str, object]]:
    return [{"id": f"{kind}-{level}-{i}", "difficulty": level, "kind": kind}
            for level, n in counts.items() for i in range(n)]


def levels(ids: list[str]) -> dict[int, int]:
    return dict(sorted(Counter(int(i.split("-")[1]) for i in ids).items()))


def test_largest_remainder_sums_to_the_total_and_gives_leftovers_to_the_biggest_remainders() -> None:
    assert largest_remainder(7, MIX) == {1: 3, 2: 2, 3: 1, 4: 1}  # 2.8 2.1 1.4 0.7: floors 2 2 1 0, +1 to 1 and 4
    assert largest_remainder(10, MIX) == {1: 4, 2: 3, 3: 2, 4: 1}
    assert largest_remainder(3, {1: 1, 2: 1, 3: 1, 4: 1}) == {1: 1, 2: 1, 3: 1, 4: 0}  # ties: the lower level
    assert sum(largest_remainder(997, MIX).values()) == 997


def test_a_short_level_gives_all_it_has_and_the_others_fill_in() -> None:
    assert allocate(10, MIX, {1: 100, 2: 100, 3: 100, 4: 0}) == {1: 5, 2: 3, 3: 2, 4: 0}
    ids, report = draw_sample(pool({1: 100, 2: 100, 3: 100, 4: 0}), SampleRequest(size=10, mix=MIX))
    assert len(ids) == 10 and levels(ids) == {1: 5, 2: 3, 3: 2}
    assert report.target_counts == {1: 4, 2: 3, 3: 2, 4: 1} and report.shortfall == {4: 1}
    assert report.realised_counts == {1: 5, 2: 3, 3: 2, 4: 0} and report.realised_mix[1] == 0.5


def test_the_mix_is_met_exactly_when_the_pool_allows_and_a_seed_reproduces_the_draw() -> None:
    tasks = pool({1: 50, 2: 50, 3: 50, 4: 50})
    ids, report = draw_sample(tasks, SampleRequest(size=20, mix=MIX, seed=3))
    assert levels(ids) == {1: 8, 2: 6, 3: 4, 4: 2} and report.shortfall == {} and report.pool_shortfall == 0
    assert draw_sample(list(reversed(tasks)), SampleRequest(size=20, mix=MIX, seed=3))[0] == ids
    assert draw_sample(tasks, SampleRequest(size=20, mix=MIX, seed=4))[0] != ids


def test_a_pool_smaller_than_n_gives_everything_and_says_so() -> None:
    ids, report = draw_sample(pool({1: 2, 2: 1}), SampleRequest(size=10, mix=MIX))
    assert len(ids) == 3 and report.drawn == 3 and report.pool_shortfall == 7


def test_by_kind_keeps_the_mix_within_each_kind() -> None:
    tasks = pool({1: 40, 2: 40, 3: 40, 4: 40}, "atomic") + pool({1: 10, 2: 10, 3: 10, 4: 10}, "depth")
    ids, _ = draw_sample(tasks, SampleRequest(size=25, mix=MIX, by="kind"))
    atomic = [i for i in ids if i.startswith("atomic")]
    depth = [i for i in ids if i.startswith("depth")]
    assert levels(atomic) == {1: 8, 2: 6, 3: 4, 4: 2} and levels(depth) == {1: 2, 2: 2, 3: 1}


@pytest.mark.parametrize("text", ["1:0.5,x", "5:0.2", "1:-1", "1:0.5,1:0.5", "", "1=0.4"])
def test_a_bad_mix_is_a_clear_error(text: str) -> None:
    with pytest.raises(TaskCraftError) as error:
        parse_mix(text)
    assert "1:0.4,2:0.3" in error.value.hint


def test_parse_mix_normalises_the_shares() -> None:
    assert parse_mix("1:2, 3:2") == {1: 0.5, 3: 0.5}


@pytest.fixture
def graded(workspace: Workspace) -> Workspace:
    workspace.store.add_tasks([make_task(f"t{level}{i}", f"Question {level} {i} about Gull Point?", f"{level}{i}",
                                         difficulty=level, status="accepted")
                               for level in (1, 2, 3, 4) for i in range(6)])
    return workspace


def test_export_records_requested_and_realised_mix_and_leaves_out_stale(graded: Workspace, tmp_path: Path) -> None:
    graded.store.add_replays([Replay(task_id="t10", answer="other", score=0, holds=False, engine="e", model="m")])
    manifest = export_tasks(graded, "jsonl", TaskFilter(statuses=["accepted"]), tmp_path / "a.jsonl",
                            exclude_stale=True, sample=SampleRequest(size=10, mix=MIX, seed=1))
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert manifest.count == len(lines) == 10 and manifest.excluded_stale == 1
    assert "t10" not in {line["id"] for line in lines}
    assert Counter(line["difficulty"] for line in lines) == {1: 4, 2: 3, 3: 2, 4: 1}
    saved = json.loads((tmp_path / "a.jsonl.manifest.json").read_text())
    assert saved["sample"]["requested_mix"] == {"1": 0.4, "2": 0.3, "3": 0.2, "4": 0.1}
    assert saved["sample"]["realised_counts"] == {"1": 4, "2": 3, "3": 2, "4": 1}


def test_cli_export_sample(graded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TASKCRAFT_HOME", str(graded.settings.home))
    out = tmp_path / "s.jsonl"
    argv = ["export", "--out", str(out), "--sample", "30", "--difficulty-mix", "1:0.4,2:0.3,3:0.2,4:0.1",
            "--seed", "5"]
    assert main([*argv, "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["count"] == 24 and manifest["sample"]["pool_shortfall"] == 6
    assert main(argv) == 0
    assert "only 24 of the 30 requested tasks exist" in capsys.readouterr().err
    assert main(["export", "--out", str(out), "--difficulty-mix", "1:1"]) == 1
    assert "--difficulty-mix and --by need --sample N" in capsys.readouterr().err
    assert main(["export", "--out", str(out), "--sample", "5", "--difficulty-mix", "9:1"]) == 1
    assert "not a valid level:share pair" in capsys.readouterr().err
