"""Does the simulator reproduce the table it was fitted on? Posterior-predictive checks.

The table's 300 design configs were trained once each with model seed 0: their observed
hypervolume is one draw of what the simulator claims to model. `design_check` predicts every
design config from a surrogate fitted on the *other* folds (5-fold cross-fitting, so no config
sees its own noise), adds the noise model the simulator adds (seed 0's recorded effect, a
trial's own deviation at the config's level), and asks where the real hypervolume falls in the simulated distribution.
`subset_check` does the same for random search's budget: 48 random design rows plus dense's
recorded seed-0 run, against 48 simulated draws plus dense's. A simulator that double-counted
noise would put the real value in its lower tail (the old one did: 0.0081 against a median
of 0.019). `config_coverage` asks the same of each held-out config alone: is its real final value
inside its own simulated 10-90 % band (80 % of configs if calibrated)? The level bound
(`bound_by_design`) comes from the same design's residuals (not from hypervolumes), so these
checks are not fully independent of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sweeps.search.pareto import hypervolume
from .surrogate import bound_by_design, fit_noise, fit_surrogate
from .table import ReplayTable

__all__ = ["Check", "Coverage", "design_check", "config_coverage"]


@dataclass(frozen=True)
class Check:
    """The real value, the simulated distribution's 10/50/90 % points and the real value's
    percentile in it."""

    name: str
    real: float
    simulated_q10: float
    simulated_median: float
    simulated_q90: float
    percentile_of_real: float
    draws: int
    real_runs: int  # real values behind ``real`` (1: the table itself; else resampled subsets, their median)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check(name: str, real: float, sims: Sequence[float], real_runs: int = 1) -> Check:
    s = np.asarray(sims, dtype=float)
    q10, q50, q90 = np.percentile(s, [10, 50, 90])
    return Check(name, float(real), float(q10), float(q50), float(q90), float(np.mean(s < real) + 0.5 * np.mean(s == real)),
                 len(s), real_runs)


@dataclass(frozen=True)
class Coverage:
    """How many held-out design configs' real final values fall inside their own simulated 10-90 %
    band (80 % if calibrated), per objective, with an exact 95 % interval, and the mean percentile
    (50 if unbiased)."""

    objective: str
    inside: int
    configs: int
    low: float
    high: float
    mean_percentile: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _crossfit(table: ReplayTable, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
    """The design rows; their real final (accuracy, noise score / max); the centre of the
    simulator's draw of each (its prediction by a surrogate fitted on the other 4 of 5 folds, plus
    its recorded seed's effect); the simulator's trial sd there; and the rng after the folds."""
    pooled = fit_noise(table)
    noise = bound_by_design(table, pooled)
    rows = [r for r in table.searched() if r["kind"] == "design"]
    acc, noise_score, _ = table.curves(rows)
    real = np.c_[acc[:, -1], noise_score[:, -1]]
    rng = np.random.default_rng([seed, 5151])
    folds = rng.permutation(len(rows)) % 5
    mean = np.zeros((len(rows), 2))
    for f in range(5):
        model = fit_surrogate(table, rows=[r for r, k in zip(rows, folds) if k != f], noise=pooled)
        test = [i for i, k in enumerate(folds) if k == f]
        a, n = model.mean([rows[i]["params"] for i in test])
        mean[test, 0], mean[test, 1] = a[:, -1], n[:, -1]
    s0 = np.array([noise.seed_effects.get(int(r["seed"]), np.zeros((2, table.epochs)))[:, -1] for r in rows])
    sd = np.array([noise.trial_sd_at((a, n))[:, -1] for a, n in mean])  # the simulator's noise at each config
    return rows, real, mean + s0, sd, rng


def config_coverage(table: ReplayTable, seed: int = 0) -> tuple[Coverage, Coverage]:
    """Each design config, predicted without it (5-fold cross-fitting), with the noise the
    simulator adds to a trial of it (its recorded seed's effect, a trial's own deviation at its
    level): is its real final value inside that distribution's 10-90 % band? (accuracy, noise)"""
    from scipy.stats import binomtest, norm

    _, real, centre, sd, _ = _crossfit(table, seed)
    out = []
    for j, name in enumerate(("val_accuracy", "val_noise_score_over_max")):
        pct = norm.cdf((real[:, j] - centre[:, j]) / np.maximum(sd[:, j], 1e-12))
        inside = int(np.sum((pct >= 0.1) & (pct <= 0.9)))
        ci = binomtest(inside, len(pct)).proportion_ci(confidence_level=0.95, method="exact")
        out.append(Coverage(name, inside, len(pct), float(ci.low), float(ci.high), float(100 * pct.mean())))
    return out[0], out[1]


def design_check(table: ReplayTable, reference: Sequence[float], draws: int = 400, subset: int = 48,
                 seed: int = 0) -> tuple[Check, Check]:
    """(every design config, random ``subset``-row samples with dense's seed-0 run)."""
    rows, real, centre, sd, rng = _crossfit(table, seed)
    dense = [r for r in table.baseline_rows("dense") if r["seed"] == table.spec.seed]
    da, dn, _ = table.curves(dense)
    dense_point = np.array([[da[0, -1], dn[0, -1]]])
    sims_all, sims_sub, real_sub = [], [], []
    for _ in range(draws):
        sim = centre + rng.standard_normal(centre.shape) * sd
        sims_all.append(hypervolume(sim, reference))
        pick = rng.choice(len(rows), subset, replace=False)
        sims_sub.append(hypervolume(np.r_[sim[pick], dense_point], reference))
        pick = rng.choice(len(rows), subset, replace=False)
        real_sub.append(hypervolume(np.r_[real[pick], dense_point], reference))
    whole = _check("all design configs", hypervolume(real, reference), sims_all)
    part = _check(f"{subset} random design configs + dense seed 0 (median of {draws} real subsets)",
                  float(np.median(real_sub)), sims_sub, real_runs=draws)
    return whole, part
