"""Seed replicates: which configs to confirm, intervals over seeds, and the test behind a claim.

Pure functions (numpy and scipy, no Ray, MLflow or Optuna), shared by the service and the replay
simulator, so the figures the simulator reports are those of the code users run.

* `candidates`: after the search, the configs to train again with more model seeds: the first
  ``top`` searched configs by non-domination rank, then crowding distance (the front first,
  spread along it), as `sweeps.search.pareto.promotion_order` ranks them.
* `estimate`: mean, standard deviation and Student-t 95 % interval of one objective over seeds.
* `compare`: a config against the dense baseline on one objective. Where both were trained with
  the same model seeds (at least two: the replicates' seeds are shared by every config), a paired
  t-test on the per-seed differences over those seeds only: a model seed moves every config's
  noise score together (the replay table's seed effect, sd about 0.023 of the maximum against 0.025
  for a trial's own noise), and an unpaired test over unequal seed sets reads that shift as a
  difference between configs (a baseline's first seed in its mean, a selected config's not).
  Otherwise Welch's two-sample t-test (unequal variances). A config is called better (worse) only
  when the 95 % interval of the difference lies wholly above (below) zero; otherwise the
  difference is not resolved, and `seeds_for_power` says about how many seeds per config would
  resolve a difference of the observed size with 80 % power.
* `confirmation_values`: which observations a config's interval rests on. A searched config was
  put on the front by its first seed, and picking the best of many single runs favours lucky
  seeds (the winner's curse), so a confirmed config's figures come from its replicate seeds only.
  A baseline was not selected: every seed of it counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "LEVEL",
    "Estimate",
    "Comparison",
    "estimate",
    "compare",
    "paired",
    "welch",
    "seeds_for_power",
    "candidates",
    "confirmation_values",
]

LEVEL = 0.95  # every interval and test: two-sided 95 %


# Student's t from scipy.special, not scipy.stats: the same functions (scipy.stats calls these), and
# the CLI's `status` and `best` skip scipy.stats's import (about 1 s of CPU).
def _t_quantile(p: float, df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _t_sf(x: float, df: float) -> float:
    from scipy.special import stdtr

    return float(stdtr(df, -x))
POWER = 0.8


@dataclass(frozen=True)
class Estimate:
    """One objective of one config over ``n`` seeds; ``low``/``high`` NaN when n < 2."""

    mean: float
    sd: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict[str, float | int | None]:
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {"mean": float(self.mean), "sd": num(self.sd), "low": num(self.low), "high": num(self.high), "n": self.n}


def estimate(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Mean and Student-t interval of ``values`` (one per seed)."""

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("estimate: no values")
    n = int(x.size)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, math.nan, n)
    sd = float(x.std(ddof=1))
    half = float(_t_quantile(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, sd, mean - half, mean + half, n)


@dataclass(frozen=True)
class Comparison:
    """``a`` minus ``b`` on one objective (maximized). ``verdict``: "better" or "worse" when the
    interval of the difference excludes zero, "not resolved" when it straddles zero, "one seed"
    when either side has a single seed (no test is possible)."""

    difference: float
    low: float
    high: float
    p_value: float  # two-sided; NaN with one seed
    verdict: str
    n_a: int
    n_b: int
    seeds_needed: int | None  # per config, for 80 % power at the observed difference; None if resolved
    test: str = "Welch"  # or "paired" (over the shared seeds: n_a == n_b, the pairs)

    def to_dict(self) -> dict[str, object]:
        def num(v: float) -> float | None:
            return None if math.isnan(v) else float(v)

        return {"difference": float(self.difference), "low": num(self.low), "high": num(self.high),
                "p_value": num(self.p_value), "verdict": self.verdict, "n": [self.n_a, self.n_b],
                "seeds_needed": self.seeds_needed, "test": self.test}


def compare(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
            a_seeds: Sequence[object] | None = None, b_seeds: Sequence[object] | None = None) -> Comparison:
    """mean(a) - mean(b) with its ``level`` interval: paired over the seeds both were trained with
    when ``a_seeds`` and ``b_seeds`` (the model seed of each value) share at least two, else
    Welch's t-test (Welch-Satterthwaite df) over every value."""
    if a_seeds is not None and b_seeds is not None:
        if len(a_seeds) != len(a) or len(b_seeds) != len(b):
            raise ValueError("compare: one seed per value")
        pa, pb = dict(zip(a_seeds, a)), dict(zip(b_seeds, b))
        shared = [s for s in pa if s in pb]
        if len(shared) >= 2:
            return paired([pa[s] for s in shared], [pb[s] for s in shared], level)
    return welch(a, b, level)


def paired(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Comparison:
    """The paired t-test of a - b (``a[i]`` and ``b[i]`` trained with the same model seed)."""

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = int(d.size)
    if n < 2:
        raise ValueError("paired: at least two pairs")
    diff, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        verdict = "better" if diff > 0 else "worse" if diff < 0 else "not resolved"
        return Comparison(diff, diff, diff, 0.0 if diff else 1.0, verdict, n, n, None, "paired")
    se = sd / math.sqrt(n)
    half = float(_t_quantile(0.5 + level / 2, n - 1)) * se
    p = float(2 * _t_sf(abs(diff) / se, n - 1))
    low, high = diff - half, diff + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "not resolved"
    needed = seeds_for_power(diff, sd, level=level, paired=True) if verdict == "not resolved" else None
    return Comparison(diff, low, high, p, verdict, n, n, needed, "paired")


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Comparison:
    """Welch's t-test of mean(a) - mean(b), with its ``level`` interval (Welch-Satterthwaite df)."""

    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xb.size == 0:
        raise ValueError("compare: each side needs at least one value")
    diff = float(xa.mean() - xb.mean())
    if xa.size < 2 or xb.size < 2:
        return Comparison(diff, math.nan, math.nan, math.nan, "one seed", int(xa.size), int(xb.size), None)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    if se == 0:
        verdict = "better" if diff > 0 else "worse" if diff < 0 else "not resolved"
        p = 0.0 if diff != 0 else 1.0
        return Comparison(diff, diff, diff, p, verdict, int(xa.size), int(xb.size), None)
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))
    half = float(_t_quantile(0.5 + level / 2, df)) * se
    p = float(2 * _t_sf(abs(diff) / se, df))
    low, high = diff - half, diff + half
    verdict = "better" if low > 0 else "worse" if high < 0 else "not resolved"
    needed = None
    if verdict == "not resolved":
        sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
        needed = seeds_for_power(diff, sd, level=level)
    return Comparison(diff, low, high, p, verdict, int(xa.size), int(xb.size), needed)


def seeds_for_power(difference: float, sd: float, level: float = LEVEL, power: float = POWER,
                    limit: int = 1000, paired: bool = False) -> int | None:
    """Seeds per config for a t-test at ``level`` to detect ``difference`` with ``power``
    (noncentral t): two-sample, both sides with standard deviation ``sd``, or (``paired``) on the
    per-seed differences, whose standard deviation ``sd`` is; None beyond ``limit`` or when there
    is no difference to detect."""

    if not (math.isfinite(difference) and math.isfinite(sd)) or difference == 0:
        return None
    if sd == 0:
        return 2
    from scipy.special import nctdtr  # the noncentral t's CDF

    effect = abs(difference) / sd
    for n in range(2, limit + 1):
        df = n - 1 if paired else 2 * n - 2
        crit = _t_quantile(0.5 + level / 2, df)
        ncp = effect * math.sqrt(n if paired else n / 2)
        if 1 - nctdtr(df, ncp, crit) + nctdtr(df, ncp, -crit) >= power:
            return n
    return None


def candidates(points: Sequence[Sequence[float]], top: int) -> list[int]:
    """Indices of the up to ``top`` points to confirm: by non-domination rank, then crowding
    distance (`sweeps.search.pareto.promotion_order`); ties keep the input order."""
    from sweeps.search.pareto import promotion_order

    if top < 1:
        raise ValueError(f"top={top!r}: must be >= 1")
    if len(points) == 0:
        return []
    return [int(i) for i in promotion_order(np.asarray(points, dtype=float))[:top]]


def confirmation_values(first: Sequence[float], replicates: Sequence[float], selected: bool) -> list[float]:
    """The observations a config's figures rest on: its replicates only when the search
    ``selected`` it on its first seed (and it has replicates), else every seed."""
    if selected and replicates:
        return list(replicates)
    return [*first, *replicates]
