"""Model calls of a run by step (`atomic.question`, `depth.auxiliary.agent`, ...), and what they come
to per candidate and per verified task: the cost of the method, step by step."""

from __future__ import annotations

from pydantic import BaseModel, Field


class StepCalls(BaseModel):
    """Calls by step over a run, with the candidates and verified tasks they produced."""

    by_step: dict[str, int] = Field(default_factory=dict, description="Model calls per '<stage>.<step>'.")
    candidates: int = 0
    verified: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_step.values())

    def per_candidate(self) -> dict[str, float]:
        return _per(self.by_step, self.candidates)

    def per_verified(self) -> dict[str, float]:
        return _per(self.by_step, self.verified)

    def report(self) -> dict[str, object]:
        """The JSON a run summary carries."""
        return {"by_step": dict(sorted(self.by_step.items())), "total": self.total,
                "per_candidate": round(self.total / self.candidates, 2) if self.candidates else None,
                "per_verified": round(self.total / self.verified, 2) if self.verified else None,
                "per_candidate_by_step": self.per_candidate(), "per_verified_by_step": self.per_verified()}


def _per(by_step: dict[str, int], n: int) -> dict[str, float]:
    return {step: round(calls / n, 2) for step, calls in sorted(by_step.items())} if n else {}


def add_steps(into: dict[str, int], stage: str, by_step: dict[str, int]) -> None:
    """Add one unit's calls by step to the run's, under the unit's stage."""
    for step, calls in by_step.items():
        key = f"{stage}.{step}"
        into[key] = into.get(key, 0) + calls
