"""Difficulty-balanced subsets: draw N tasks whose difficulty counts follow a target mix.

The counts come from largest-remainder rounding of N x share, so they always sum to N. A level
with fewer tasks than its count gives all it has; what it lacks (its shortfall) is shared among
the levels that have more, again by largest remainder over their shares, so the sample still holds
exactly N tasks when the pool has N. With `by="kind"` the mix holds within each kind, and N is
shared among the kinds in proportion to how many tasks each has. The draw is random but
reproducible: the same pool, mix and seed give the same tasks.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from taskcraft_core.errors import TaskCraftError

DIFFICULTY_LEVELS = (1, 2, 3, 4)
MIX_HINT = "Write the mix as level:share pairs, e.g. 1:0.4,2:0.3,3:0.2,4:0.1 (levels 1-4, shares > 0)."


class SampleRequest(BaseModel):
    """How many tasks to draw, in what difficulty mix, stratified by what, with which seed."""

    size: int = Field(gt=0)
    mix: dict[int, float] = Field(description="Difficulty level -> share; shares sum to 1.")
    by: Literal["kind"] | None = None
    seed: int = 0


class SampleReport(BaseModel):
    """What a sample asked for and what it got (the manifest records it)."""

    requested: int
    drawn: int
    seed: int
    by: str | None
    requested_mix: dict[int, float]
    target_counts: dict[int, int] = Field(description="N x share by largest remainder, before any shortfall.")
    realised_counts: dict[int, int]
    realised_mix: dict[int, float]
    shortfall: dict[int, int] = Field(description="Per level, how many fewer than its target the pool had.")
    pool_shortfall: int = Field(0, description="How many fewer tasks than requested the whole pool had.")


def parse_mix(text: str) -> dict[int, float]:
    """"1:0.4,2:0.3,3:0.2,4:0.1" -> {1: 0.4, 2: 0.3, 3: 0.2, 4: 0.1}, normalised to sum 1."""
    mix: dict[int, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        level_text, sep, share_text = part.partition(":")
        try:
            level, share = int(level_text), float(share_text)
        except ValueError:
            raise TaskCraftError(f"Cannot read “{part}” in the difficulty mix.", MIX_HINT) from None
        if not sep or level not in DIFFICULTY_LEVELS or share <= 0 or level in mix:
            raise TaskCraftError(f"“{part}” is not a valid level:share pair (or repeats a level).", MIX_HINT)
        mix[level] = share
    return normalise_mix(mix)


def normalise_mix(mix: Mapping[int, float]) -> dict[int, float]:
    """The mix with its positive shares scaled to sum 1; an error when nothing is left."""
    total = sum(share for share in mix.values() if share > 0)
    if total <= 0:
        raise TaskCraftError("The difficulty mix is empty.", MIX_HINT)
    return {level: round(share / total, 6) for level, share in sorted(mix.items()) if share > 0}


def largest_remainder(total: int, shares: Mapping[int, float]) -> dict[int, int]:
    """Integer counts proportional to the shares that sum exactly to `total` (Hamilton's method:
    floors first, then one more to the largest remainders; ties go to the lower key)."""
    weight = sum(shares.values())
    exact = {key: total * share / weight for key, share in shares.items()}
    counts = {key: int(value) for key, value in exact.items()}
    by_remainder = sorted(shares, key=lambda key: (-(exact[key] - counts[key]), key))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def allocate(total: int, shares: Mapping[int, float], available: Mapping[int, int]) -> dict[int, int]:
    """Counts per level that sum to min(total, what is available): the largest-remainder targets,
    capped by what each level has, the rest shared again among the levels that still have more."""
    counts = dict.fromkeys(shares, 0)
    left = min(total, sum(available.get(level, 0) for level in shares))
    while left > 0:
        open_levels = {level: share for level, share in shares.items() if available.get(level, 0) > counts[level]}
        if not open_levels:
            break
        for level, extra in largest_remainder(left, open_levels).items():
            take = min(extra, available.get(level, 0) - counts[level])
            counts[level] += take
            left -= take
    return counts


def draw_sample(pool: Sequence[Mapping[str, object]], request: SampleRequest) -> tuple[list[str], SampleReport]:
    """Ids drawn from the pool (rows with id, difficulty and kind) and the report of the draw.
    Difficulties outside 1-4 count as the nearest level."""
    mix = normalise_mix(request.mix)
    rng = random.Random(request.seed)
    strata: dict[str, list[Mapping[str, object]]] = {}
    for row in sorted(pool, key=lambda r: str(r["id"])):  # the order of the pool never changes the draw
        strata.setdefault(str(row["kind"]) if request.by == "kind" else "", []).append(row)
    per_stratum = largest_remainder(min(request.size, len(pool)), {i: len(rows) for i, rows in
                                                                  enumerate(strata.values())}) if pool else {}
    chosen: list[str] = []
    for index, rows in enumerate(strata.values()):
        by_level: dict[int, list[str]] = {level: [] for level in DIFFICULTY_LEVELS}
        for row in rows:
            by_level[min(max(int(str(row["difficulty"])), 1), 4)].append(str(row["id"]))
        counts = allocate(per_stratum.get(index, 0), mix, {level: len(ids) for level, ids in by_level.items()})
        for level, count in counts.items():
            chosen.extend(rng.sample(by_level[level], count))
    return chosen, _report(request, mix, pool, chosen)


def _report(request: SampleRequest, mix: dict[int, float], pool: Sequence[Mapping[str, object]],
            chosen: Sequence[str]) -> SampleReport:
    level_of = {str(row["id"]): min(max(int(str(row["difficulty"])), 1), 4) for row in pool}
    realised = {level: 0 for level in mix}
    for task_id in chosen:
        realised[level_of[task_id]] = realised.get(level_of[task_id], 0) + 1
    target = largest_remainder(request.size, mix)
    return SampleReport(
        requested=request.size, drawn=len(chosen), seed=request.seed, by=request.by, requested_mix=mix,
        target_counts=target, realised_counts=realised,
        realised_mix={level: round(count / len(chosen), 4) if chosen else 0.0 for level, count in realised.items()},
        shortfall={level: target[level] - realised.get(level, 0) for level in target
                   if target[level] > realised.get(level, 0)},
        pool_shortfall=max(0, request.size - len(pool)),
    )
