"""Compare searchers on a replay table: many simulated sweeps each, scored on the truth.

The headline metric is the *true* hypervolume (`sweeps.replay.truth`): the hypervolume, in
(validation accuracy, validation noise score / its maximum), of the surrogate's noise-free means at
the configs the service hands over after its confirmation phase, above a reference point fixed by
the truth model (`truth.reference_point`: the design's 10th percentile of true final accuracy, and
dense's true noise score, so dense is worth 0). Searchers are compared at equal total epochs,
replicates included: each variant's true hypervolume once it (with a confirmation then) had
trained as many epochs as the median `baseline_variant` run trained in all.

Per variant: the final and equal-epoch true hypervolume (median, quartiles, a 95 % interval of the
median), a one-sided Mann-Whitney p that it reaches the target in fewer searched trials than
``baseline_variant`` (never reaching it ranks beyond every budget), the trials (searched trials
ended: baselines and replicates not counted) and epochs
(everything trained, the confirmation's replicates included) to reach the `baseline_variant`'s
median true final hypervolume, where a run that never reaches it counts as beyond the budget (a
median that falls among those is "beyond", never a smaller order statistic); what `best` claims
against dense and how often the claims are true; how often the chosen config truly beats dense.
The observed hypervolume (of the noisy values a sweep sees, the figure reports draw) is kept
beside it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sweeps.search.confirm import seeds_for_power
from .simulate import SimResult, simulate
from .surrogate import Surrogate
from .table import ReplayTable
from .truth import ACCURACY_SLACK, reference_point

__all__ = ["Variant", "reference_point", "run_variant", "summarize", "first_reaching", "hypervolume_at", "quantiles",
           "median_interval", "proportion", "simulate_spec", "spec_variant"]


@dataclass(frozen=True)
class Variant:
    """One searcher set-up: a sampler, an early-stopping rule or none, a confirmation or none."""

    name: str
    algorithm: str
    early_stopping: dict[str, Any] | None = None  # EarlyStopping fields
    trials: int | None = None  # None: the spec's budget.trials
    startup_trials: int | None = None  # None: the spec's searcher.startup_trials
    confirm: tuple[int, int] | None = None  # (top, seeds); None: no confirmation phase

    def spec_for(self, spec: Any) -> Any:
        from sweeps.spec import Confirm, EarlyStopping

        es = None if self.early_stopping is None else EarlyStopping(**self.early_stopping)
        budget = spec.budget if self.trials is None else dataclasses.replace(spec.budget, trials=self.trials)
        searcher = dataclasses.replace(spec.searcher, algorithm=self.algorithm)
        if self.startup_trials is not None:
            searcher = dataclasses.replace(searcher, startup_trials=self.startup_trials)
        confirm = None if self.confirm is None else Confirm(*self.confirm)
        return dataclasses.replace(spec, searcher=searcher, early_stopping=es, budget=budget, confirm=confirm)


def run_variant(spec: Any, variant: Variant, surrogate: Surrogate, seeds: Sequence[int],
                progress: Callable[[str], None] | None = None, mode: str = "drawn",
                reference: Sequence[float] | None = None) -> list[SimResult]:
    vspec = variant.spec_for(spec)
    ref = tuple(reference) if reference is not None else reference_point(surrogate)
    out = []
    t0 = time.perf_counter()
    for seed in seeds:
        out.append(simulate(vspec, surrogate, seed, mode=mode, reference=ref))
    if progress:
        progress(f"{variant.name}: {len(seeds)} simulated sweeps in {time.perf_counter() - t0:.1f}s")
    return out


# -- statistics (pure) ---------------------------------------------------------------------------

def first_reaching(curve: Sequence[float], target: float) -> int | None:
    """1-based index of the first value >= target, None if never."""
    hits = np.flatnonzero(np.asarray(curve, dtype=float) >= target - 1e-12)
    return int(hits[0]) + 1 if len(hits) else None


def quantiles(values: Sequence[float], qs: Sequence[float] = (25, 50, 75)) -> list[float | None]:
    """Percentiles (numpy's default, linear) where ``inf`` marks a run beyond the budget: a
    percentile that involves one is None ("beyond"), never a smaller neighbour."""
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return [None for _ in qs]
    out: list[float | None] = []
    for q in qs:
        pos = (x.size - 1) * q / 100
        lo, hi = int(math.floor(pos)), int(math.ceil(pos))
        if not (math.isfinite(x[lo]) and math.isfinite(x[hi])):
            out.append(None)
        else:
            out.append(float(x[lo] + (x[hi] - x[lo]) * (pos - lo)))
    return out


def _quartiles(values: Sequence[float]) -> dict[str, float | None]:
    q1, med, q3 = quantiles(values)
    return {"median": med, "q1": q1, "q3": q3}


def median_interval(values: Sequence[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free interval of the median: order statistics (x_(j), x_(k)) with
    P(j <= Binomial(n, 1/2) < k) >= level (None where the order statistic is beyond the budget)."""
    from scipy import stats

    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0:
        return None, None
    # (x[j], x[n-1-j]) (0-based) covers the median with probability 1 - 2 P(B <= j),
    # B ~ Binomial(n, 1/2): take the largest j with P(B <= j) <= alpha/2
    j = int(stats.binom.ppf((1 - level) / 2, n, 0.5))  # smallest j with P(B <= j) >= alpha/2
    if stats.binom.cdf(j, n, 0.5) > (1 - level) / 2:
        j -= 1
    j = min(max(j, 0), (n - 1) // 2)  # too few runs for the level: the extremes
    k = n - 1 - j
    num = lambda v: float(v) if math.isfinite(v) else None  # noqa: E731
    return num(x[j]), num(x[k])


def proportion(k: int, n: int) -> dict[str, float | int | None]:
    """k of n with its exact (Clopper-Pearson) 95 % interval."""
    from scipy.stats import binomtest

    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "low": None, "high": None}
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return {"k": int(k), "n": int(n), "rate": k / n, "low": float(ci.low), "high": float(ci.high)}


def hypervolume_at(hv: Sequence[float], epochs: Sequence[float], budget: float) -> float:
    """A run's hypervolume once it had trained ``budget`` epochs (its last, if it trained fewer)."""
    i = np.searchsorted(np.asarray(epochs), budget, side="right") - 1
    return float(hv[i]) if i >= 0 else 0.0


def _median_curve(curves: list[np.ndarray]) -> dict[str, list[float]]:
    n = min(len(c) for c in curves)
    stack = np.stack([np.asarray(c[:n], dtype=float) for c in curves])
    q1, med, q3 = np.percentile(stack, [25, 50, 75], axis=0)
    return {"median": med.tolist(), "q1": q1.tolist(), "q3": q3.tolist()}


def _summary(values: Sequence[float]) -> dict[str, Any]:
    low, high = median_interval(values)
    return _quartiles(values) | {"median_low": low, "median_high": high, "n": len(values)}


# -- the comparison ------------------------------------------------------------------------------

def claims_of(runs: Sequence[SimResult], baseline: str = "dense") -> dict[str, Any]:
    """What `best` claimed against ``baseline`` over ``runs``, per objective, and how many claims
    were true: "better"/"worse" (``true``) and "equivalent" (``equivalent_true``) apart."""
    out: dict[str, Any] = {}
    for key in ("val_noise_score", "val_accuracy"):
        made = [c for r in runs if r.handover for c in r.handover.claims
                if c.baseline == baseline and c.objective == key and c.directional]
        same = [c for r in runs if r.handover for c in r.handover.claims
                if c.baseline == baseline and c.objective == key and c.verdict == "equivalent"]
        verdicts = [c.verdict for r in runs if r.handover for c in r.handover.claims
                    if c.baseline == baseline and c.objective == key]
        out[key] = {"claims": len(made), "true": proportion(sum(bool(c.correct) for c in made), len(made)),
                    "equivalent_true": proportion(sum(bool(c.correct) for c in same), len(same)),
                    "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))}}
    every = [c for r in runs if r.handover for c in r.handover.claims if c.baseline == baseline and c.directional]
    out["all"] = proportion(sum(bool(c.correct) for c in every), len(every))
    return out


def power_of(runs: Sequence[SimResult], noise_sd: float, baseline: str = "dense") -> dict[str, Any]:
    """How often the chosen config truly beats ``baseline`` on noise within `ACCURACY_SLACK` of its
    accuracy, how often `best` says it beats it on noise, and the seeds per config a Welch test
    needs for 80 % power at the chosen configs' true noise margins (``noise_sd``: one trial's)."""
    truly, says, both, margins, needed = 0, 0, 0, [], []
    for r in runs:
        h = r.handover
        if h is None or h.chosen_truth is None:
            continue
        t = h.truly_beats(baseline)
        c = h.claim(baseline, "val_noise_score")
        s = c is not None and c.verdict == "better"
        truly, says, both = truly + t, says + s, both + (t and s)
        base = dict(h.baseline_truth)[baseline]
        margins.append(h.chosen_truth[1] - base[1])
        if t:
            n = seeds_for_power(h.chosen_truth[1] - base[1], noise_sd)
            needed.append(math.inf if n is None else float(n))
    n = len(runs)
    return {"truly_beats": proportion(truly, n), "says_better_on_noise": proportion(says, n),
            "truly_beats_and_says_so": proportion(both, n),
            "said_when_truly_beats": proportion(both, truly),
            "chosen_true_noise_margin": _summary(margins),
            "seeds_for_80pct_power_at_true_margin": _quartiles(needed) | {"n": len(needed)},
            "accuracy_slack": ACCURACY_SLACK, "noise_sd": noise_sd}


def summarize(results: dict[str, list[SimResult]], reference: tuple[float, float],
              baseline_variant: str = "random", noise_sd: float | None = None) -> dict[str, Any]:
    """Per variant: the true and observed hypervolume figures, trials and epochs to reach
    ``baseline_variant``'s median true final hypervolume, the claims and the power."""
    from scipy.stats import mannwhitneyu

    true_final = {n: [r.handover.true_hypervolume if r.handover else 0.0 for r in runs] for n, runs in results.items()}
    target = float(np.median(true_final[baseline_variant]))
    epoch_budget = float(np.median([r.epochs_total for r in results[baseline_variant]]))
    at_budget = {n: [hypervolume_at(r.true_curve, r.true_epochs, epoch_budget) for r in runs]
                 for n, runs in results.items()}
    observed = {n: [r.anytime() for r in runs] for n, runs in results.items()}
    obs_final = {n: [float(hv[-1]) if len(hv) else 0.0 for hv, _ in cs] for n, cs in observed.items()}
    obs_target = float(np.median(obs_final[baseline_variant]))
    out: dict[str, Any] = {"reference_point": list(reference), "target": target, "target_of": baseline_variant,
                           "observed_target": obs_target, "epoch_budget": epoch_budget, "variants": {}}
    inf = lambda v: math.inf if v is None else float(v)  # noqa: E731  ("never": beyond every budget)
    trials_to_of = {n: [first_reaching(r.true_curve, target) for r in runs] for n, runs in results.items()}
    half = float(np.median([len(r.true_curve) for r in results[baseline_variant]])) / 2
    out["half_of_target_trials"] = half
    for name, runs in results.items():
        trials_to = trials_to_of[name]
        epochs_to = [r.true_epochs[i - 1] if i else None for r, i in zip(runs, trials_to)]
        obs_to = [first_reaching(hv, obs_target) for hv, _ in observed[name]]
        p = p_budget = p_trials = None
        if name != baseline_variant:
            p_trials = float(mannwhitneyu([inf(i) for i in trials_to], [inf(i) for i in trials_to_of[baseline_variant]],
                                          alternative="less").pvalue)
            p = float(mannwhitneyu(true_final[name], true_final[baseline_variant], alternative="greater").pvalue)
            p_budget = float(mannwhitneyu(at_budget[name], at_budget[baseline_variant], alternative="greater").pvalue)
        entry = {
            "runs": len(runs),
            "true_final_hypervolume": _summary(true_final[name]),
            "true_hypervolume_at_epoch_budget": _summary(at_budget[name]),
            "true_finals": true_final[name],
            "true_at_budget": at_budget[name],
            "trials_to_target": _quartiles([inf(i) for i in trials_to])
            | {"reached": sum(i is not None for i in trials_to), "runs": len(runs), "per_run": trials_to,
               "within_half": sum(i is not None and i <= half for i in trials_to)},
            "epochs_to_target": _quartiles([inf(e) for e in epochs_to]),
            "trials_searched": _quartiles([float(len(r.true_curve)) for r in runs]),
            "epochs_total": _quartiles([float(r.epochs_total) for r in runs]),
            "mannwhitney_p_true_final_greater_than_" + baseline_variant: p,
            "mannwhitney_p_true_at_epoch_budget": p_budget,
            # fewer searched trials to the target than ``baseline_variant`` (runs that never reach it: beyond)
            "mannwhitney_p_fewer_trials_to_target": p_trials,
            "true_curve_by_trials": _median_curve([np.asarray(r.true_curve) for r in runs]),
            "observed_final_hypervolume": _summary(obs_final[name]),
            "confirmed_final_hypervolume": _summary([r.handover.confirmed_hypervolume if r.handover else 0.0
                                                     for r in runs]),
            "observed_finals": obs_final[name],
            "observed_trials_to_observed_target": _quartiles([inf(i) for i in obs_to]),
            "observed_curve_by_trials": _median_curve([hv for hv, _ in observed[name]]),
            "observed_curve_by_trials_ended": _median_curve([r.anytime_all() for r in runs]),
            "claims_against_dense": claims_of(runs),
            "chosen": [None if r.handover is None else r.handover.chosen_truth for r in runs],
        }
        if noise_sd is not None:
            entry["power"] = power_of(runs, noise_sd)
        out["variants"][name] = entry
    return out


def spec_variant(spec: Any) -> Variant:
    """The spec's own searcher set-up as a `Variant`."""
    es = None if spec.early_stopping is None else dataclasses.asdict(spec.early_stopping)
    name = spec.searcher.algorithm + ("" if es is None else f"+asha-{es['rule']}")
    confirm = None if spec.confirm is None else (spec.confirm.top, spec.confirm.seeds)
    return Variant(name, spec.searcher.algorithm, es, confirm=confirm)


def simulate_spec(spec: Any, table: ReplayTable, seeds: Sequence[int], others: Sequence[str] = (),
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Random search, the spec's searcher and ``others`` (sampler names), simulated on ``table``
    with the spec's budget and confirmation: `summarize`'s figures plus the surrogate's held-out
    fidelity and its noise model."""
    from .surrogate import fit_surrogate, holdout

    table.check_covers(spec)
    fidelity = holdout(table)
    surrogate = fit_surrogate(table)
    own = spec_variant(spec)
    variants = {"random": dataclasses.replace(own, name="random", algorithm="random")}
    variants.setdefault(own.name, own)
    for name in others:
        variants.setdefault(name, dataclasses.replace(own, name=name, algorithm=name))
    ref = reference_point(surrogate)
    results = {name: run_variant(spec, v, surrogate, list(seeds), progress, reference=ref)
               for name, v in variants.items()}
    out = summarize(results, ref, noise_sd=float(surrogate.noise.total_sd_at(surrogate.truth(None, "dense"), "dense")[1, -1]))
    out["fidelity"] = fidelity.line()
    out["fidelity_figures"] = fidelity.to_dict()
    out["noise_model"] = surrogate.noise.to_dict()
    out["seeds"] = len(list(seeds))
    out["table"] = table.path
    return out
