"""What a sweep's study needs of its spec: a small typed plan, built by `sweeps.spec.SweepSpec.study_plan`.

The search decides from this plan alone (it never sees the spec): the searched dimensions, the
baselines asked first, the search budget, the sampler, and the seed replicates that confirm the
front (`sweeps.search.study.SweepStudy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Dimension", "StudyPlan"]


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a float/int range (optionally log scale) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    integer: bool = False


@dataclass(frozen=True)
class StudyPlan:
    """A study's plan: baselines first (``baselines``: name and values, asked once each), then
    ``trials`` searched configs proposed by ``sampler``, then, with ``confirm_top``, the replicates:
    the ``confirm_top`` candidates and every baseline again with ``confirm_seeds`` model seeds, then
    the later looks within ``replicate_budget``."""

    name: str
    space: tuple[Dimension, ...]
    baselines: tuple[tuple[str, Mapping[str, Any]], ...]
    trials: int
    sampler: str
    sampler_seed: int
    startup_trials: int | None = None
    confirm_top: int | None = None  # None: no confirmation
    confirm_seeds: int = 0  # the first round's seeds per config (replicates k = 1 .. confirm_seeds)
    seed: int = 0  # the spec's seed: replicate k trains with model seed seed + k
    replicate_budget: int = 0  # replicate trials in all (later looks: `sweeps.search.allocation`)
    looks: int = 1  # rounds of replicates at most (the first included)
    margins: tuple[tuple[str, float], ...] = ()  # objective -> margin as the spec gives it (points, share)

    def __post_init__(self) -> None:
        if self.trials < 0:
            raise ValueError(f"plan {self.name!r}: trials={self.trials} must be >= 0")
        if self.confirm_top is not None and self.confirm_seeds < 1:
            raise ValueError(f"plan {self.name!r}: a confirmation needs replicate seeds")

    @property
    def confirms(self) -> bool:
        return self.confirm_top is not None

    def replicate_seed(self, k: int) -> int:
        """The model seed of a config's ``k``-th replicate (1-based)."""
        return self.seed + k
