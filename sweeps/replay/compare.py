"""Compare searchers on a replay table: many simulated sweeps each, summarized by hypervolume.

The metric is the hypervolume of the COMPLETE trials in (validation accuracy, validation noise
score / its maximum), against a reference point fixed per table (`reference_point`):

* accuracy: the 10th percentile of the design's final validation accuracy (a config less accurate
  than nine in ten random ones adds nothing);
* noise: the dense baseline's median final noise score over its maximum (a config counts only
  where it is more robust than dense, the trade-off the service exists to find).

So the dense baseline alone is worth 0, and all of a sweep's hypervolume is what its search found.
For each searcher: the median and interquartile range of the final hypervolume over seeds; the
anytime curves against trials ended and against epochs trained; and how many trials (and epochs)
its median run needs to reach random search's median final hypervolume.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .simulate import SimResult, simulate
from .surrogate import Surrogate
from .table import ReplayTable

__all__ = ["Variant", "reference_point", "run_variant", "summarize", "first_reaching", "hypervolume_at"]


@dataclass(frozen=True)
class Variant:
    """One searcher set-up: a sampler, and an early-stopping rule or none."""

    name: str
    algorithm: str
    early_stopping: dict[str, Any] | None = None  # EarlyStopping fields
    trials: int | None = None  # None: the spec's budget.trials
    startup_trials: int | None = None  # None: the spec's searcher.startup_trials

    def spec_for(self, spec: Any) -> Any:
        from sweeps.spec import EarlyStopping

        es = None if self.early_stopping is None else EarlyStopping(**self.early_stopping)
        budget = spec.budget if self.trials is None else dataclasses.replace(spec.budget, trials=self.trials)
        searcher = dataclasses.replace(spec.searcher, algorithm=self.algorithm)
        if self.startup_trials is not None:
            searcher = dataclasses.replace(searcher, startup_trials=self.startup_trials)
        return dataclasses.replace(spec, searcher=searcher, early_stopping=es, budget=budget)


def reference_point(table: ReplayTable, baseline: str = "dense") -> tuple[float, float]:
    design = [r for r in table.searched() if r["kind"] == "design"]
    acc, _, _ = table.curves(design)
    rows = table.baseline_rows(baseline)
    if not rows:
        raise ValueError(f"replay table {table.path}: no {baseline!r} baseline rows for the reference point")
    _, noise, _ = table.curves(rows)
    return (float(np.percentile(acc[:, -1], 10)), float(np.median(noise[:, -1])))


def run_variant(spec: Any, variant: Variant, surrogate: Surrogate, seeds: Sequence[int],
                progress: Callable[[str], None] | None = None) -> list[SimResult]:
    vspec = variant.spec_for(spec)
    out = []
    t0 = time.perf_counter()
    for seed in seeds:
        out.append(simulate(vspec, surrogate, seed))
    if progress:
        progress(f"{variant.name}: {len(seeds)} simulated sweeps in {time.perf_counter() - t0:.1f}s")
    return out


def first_reaching(curve: np.ndarray, target: float) -> int | None:
    """1-based index of the first value >= target, None if never."""
    hits = np.flatnonzero(curve >= target - 1e-12)
    return int(hits[0]) + 1 if len(hits) else None


def _quartiles(values: list[float]) -> dict[str, float | None]:
    """Median and quartiles; a run that never got there counts as infinitely late (None in JSON)."""
    if not values:
        return {"median": None, "q1": None, "q3": None}
    q1, med, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75], method="lower")
    return {k: (float(v) if math.isfinite(v) else None) for k, v in (("median", med), ("q1", q1), ("q3", q3))}


def hypervolume_at(hv: np.ndarray, epochs: np.ndarray, budget: float) -> float:
    """A run's hypervolume once it had trained ``budget`` epochs (its last, if it trained fewer)."""
    i = np.searchsorted(epochs, budget, side="right") - 1
    return float(hv[i]) if i >= 0 else 0.0


def _median_curve(curves: list[np.ndarray]) -> dict[str, list[float]]:
    n = min(len(c) for c in curves)
    stack = np.stack([c[:n] for c in curves])
    q1, med, q3 = np.percentile(stack, [25, 50, 75], axis=0)
    return {"median": med.tolist(), "q1": q1.tolist(), "q3": q3.tolist()}


def summarize(results: dict[str, list[SimResult]], reference: tuple[float, float],
              baseline_variant: str = "random") -> dict[str, Any]:
    """Per variant: final hypervolume quartiles, anytime curves (by trials ended and by epochs),
    and trials/epochs to reach ``baseline_variant``'s median final hypervolume."""
    from scipy.stats import mannwhitneyu

    curves = {name: [r.anytime(reference) for r in runs] for name, runs in results.items()}
    finals = {name: [float(hv[-1]) for hv, _ in cs] for name, cs in curves.items()}
    target = float(np.median(finals[baseline_variant]))
    # Equal compute: every variant's hypervolume once it trained as many epochs as the median
    # `baseline_variant` run trained in all (multi-fidelity variants get more trials for it).
    epoch_budget = float(np.median([ep[-1] for _, ep in curves[baseline_variant]]))
    at_budget = {name: [hypervolume_at(hv, ep, epoch_budget) for hv, ep in cs] for name, cs in curves.items()}
    out: dict[str, Any] = {"reference_point": list(reference), "target": target, "target_of": baseline_variant,
                           "epoch_budget": epoch_budget, "variants": {}}
    for name, cs in curves.items():
        hv_curves = [hv for hv, _ in cs]
        med = np.array(_median_curve(hv_curves)["median"])
        trials_to = [first_reaching(hv, target) for hv in hv_curves]
        epochs_to = [int(ep[i - 1]) if i else None for (hv, ep), i in zip(cs, trials_to)]
        reached = [i for i in trials_to if i is not None]
        late = math.inf
        # Epoch axis: hypervolume reached by each epoch budget (step function), median over seeds.
        max_epochs = max(int(ep[-1]) for _, ep in cs)
        grid = np.arange(1, max_epochs + 1)
        by_epoch = [np.array([hv[np.searchsorted(ep, g, side="right") - 1] if ep[0] <= g else 0.0 for g in grid])
                    for hv, ep in cs]
        med_epoch = np.median(np.stack(by_epoch), axis=0)
        p = p_budget = None
        if name != baseline_variant:
            p = float(mannwhitneyu(finals[name], finals[baseline_variant], alternative="greater").pvalue)
            p_budget = float(mannwhitneyu(at_budget[name], at_budget[baseline_variant], alternative="greater").pvalue)
        out["variants"][name] = {
            "final_hypervolume": _quartiles(finals[name]),
            "finals": finals[name],
            "trials_to_target_of_median_curve": first_reaching(med, target),
            "epochs_to_target_of_median_curve": first_reaching(med_epoch, target),
            "trials_to_target": _quartiles([late if i is None else float(i) for i in trials_to])
            | {"reached": len(reached), "runs": len(cs)},
            "epochs_to_target": _quartiles([late if e is None else float(e) for e in epochs_to]),
            "hypervolume_at_epoch_budget": _quartiles(at_budget[name]),
            "trials_total": _quartiles([float(len(hv)) for hv in hv_curves]),
            "epochs_total": _quartiles([float(ep[-1]) for _, ep in cs]),
            "mannwhitney_p_greater_than_" + baseline_variant: p,
            "mannwhitney_p_at_epoch_budget": p_budget,
            "curve_by_trials": _median_curve(hv_curves),
            "curve_by_epochs_median": med_epoch.tolist(),
        }
    return out


def spec_variant(spec: Any) -> Variant:
    """The spec's own searcher set-up as a `Variant`."""
    es = None if spec.early_stopping is None else dataclasses.asdict(spec.early_stopping)
    name = spec.searcher.algorithm + ("" if es is None else f"+asha-{es['rule']}")
    return Variant(name, spec.searcher.algorithm, es)


def simulate_spec(spec: Any, table: ReplayTable, seeds: Sequence[int], others: Sequence[str] = (),
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Random search, the spec's searcher and ``others`` (sampler names), simulated on ``table``
    with the spec's budget: `summarize`'s figures plus the surrogate's held-out fidelity."""
    from .surrogate import fit_surrogate, holdout

    table.check_covers(spec)
    fidelity = holdout(table)
    surrogate = fit_surrogate(table)
    variants = {"random": Variant("random", "random")}
    own = spec_variant(spec)
    variants.setdefault(own.name, own)
    for name in others:
        variants.setdefault(name, Variant(name, name))
    results = {name: run_variant(spec, v, surrogate, list(seeds), progress) for name, v in variants.items()}
    out = summarize(results, reference_point(table))
    out["fidelity"] = fidelity.line()
    out["fidelity_figures"] = fidelity.to_dict()
    out["seeds"] = len(list(seeds))
    out["table"] = table.path
    return out
