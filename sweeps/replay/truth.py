"""Searchers scored on the truth: what a sweep hands over, valued at the surrogate's noise-free means.

A simulated sweep observes noisy values; the user gets configs. So the replay benchmark scores a
sweep by what the service would hand over after its confirmation phase, through the service's own
code (`sweeps.search.record.config_summaries` and `config_front`: the front on the means, among the
confirmed configs once there are replicates; `sweeps.results.best.choose` and `sweep_claims`:
the chosen config and the claims `sweeps best` makes), and values it at the truth:

* `Handover.true_hypervolume`: the hypervolume of the front configs' *true* (expected) final
  objectives above the reference point;
* the chosen config's true objectives against the dense baseline's, and whether each claim `best`
  makes ("better"/"worse" by more than the margin, "equivalent" within it) is true.

`reference_point` comes from the truth model too: no tested draw sits on it by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sweeps.search.pareto import hypervolume

__all__ = ["Claim", "Handover", "handover", "reference_point", "true_hypervolume", "ACCURACY_SLACK"]

OBJECTIVE_KEYS = ("val_accuracy", "val_noise_score")
ACCURACY_SLACK = 0.005  # "within 0.5 points of accuracy" of dense


@dataclass(frozen=True)
class Claim:
    """What `best` says of the chosen config against one baseline on one objective, and the truth."""

    baseline: str
    objective: str  # val_accuracy or val_noise_score
    verdict: str  # better, worse, equivalent, not resolved (`sweeps.search.claims.VERDICTS`)
    observed: float  # the tested difference
    true: float  # difference of the true values
    seeds_needed: int | None
    margin: float = 0.0  # the claim's margin (noise score as a share of its maximum)

    @property
    def claimed(self) -> bool:
        return self.verdict in ("better", "worse", "equivalent")

    @property
    def directional(self) -> bool:
        return self.verdict in ("better", "worse")

    @property
    def correct(self) -> bool | None:
        """Whether a claim is true (None: no claim made): better by more than the margin, worse by
        more, or within it."""
        if self.verdict == "better":
            return self.true > self.margin
        if self.verdict == "worse":
            return self.true < -self.margin
        if self.verdict == "equivalent":
            return abs(self.true) < self.margin
        return None


@dataclass(frozen=True)
class Handover:
    """What a sweep hands over and its truth. ``front``: first-trial numbers of the configs on the
    service's front; ``chosen``: the knee's (None with an empty front)."""

    front: tuple[int, ...]
    front_truth: tuple[tuple[float, float], ...]
    true_hypervolume: float
    chosen: int | None
    chosen_baseline: str | None
    chosen_truth: tuple[float, float] | None
    chosen_seeds: int
    baseline_truth: tuple[tuple[str, tuple[float, float]], ...]
    claims: tuple[Claim, ...]
    front_means: tuple[tuple[float, float], ...] = ()  # what the service shows: the front configs' means
    confirmed_hypervolume: float = 0.0  # hypervolume of ``front_means``: what a real sweep can measure

    def claim(self, baseline: str, objective: str) -> Claim | None:
        return next((c for c in self.claims if c.baseline == baseline and c.objective == objective), None)

    def truly_beats(self, baseline: str = "dense", slack: float = ACCURACY_SLACK) -> bool:
        """The chosen config is truly more robust than ``baseline`` and at most ``slack`` less accurate."""
        truth = dict(self.baseline_truth).get(baseline)
        if self.chosen_truth is None or truth is None or self.chosen_baseline is not None:
            return False
        return self.chosen_truth[1] > truth[1] and self.chosen_truth[0] >= truth[0] - slack

    def to_dict(self) -> dict[str, Any]:
        return {"front": list(self.front), "front_truth": [list(t) for t in self.front_truth],
                "true_hypervolume": self.true_hypervolume, "chosen": self.chosen,
                "chosen_baseline": self.chosen_baseline,
                "chosen_truth": None if self.chosen_truth is None else list(self.chosen_truth),
                "chosen_seeds": self.chosen_seeds, "baseline_truth": {k: list(v) for k, v in self.baseline_truth},
                "claims": [c.__dict__ for c in self.claims], "front_means": [list(m) for m in self.front_means],
                "confirmed_hypervolume": self.confirmed_hypervolume}


def true_hypervolume(truths: Sequence[tuple[float, float]], reference: Sequence[float]) -> float:
    """Hypervolume of true (accuracy, noise score/max) points above ``reference``."""
    if len(truths) == 0:
        return 0.0
    return float(hypervolume(np.asarray(truths, dtype=float).reshape(-1, 2), reference))


def handover(trials: Sequence[Any], truth_of: Callable[[int], tuple[float, float]],
             reference: Sequence[float], claims: bool = True, spec: Any = None) -> Handover:
    """What the service hands over from ``trials`` (Optuna trials, or objects with the same
    ``number``, ``state.name``, ``values``, ``user_attrs`` and ``params``), valued by ``truth_of``
    (a config's first-trial number -> its true final (accuracy, noise score/max)). ``claims``:
    False leaves out the chosen config and its tests (the front and its truth only); else ``spec``
    (the sweep's: its baselines, margins and looks) is needed."""
    from sweeps.results.best import NoFinishedTrialsError, choose, sweep_claims
    from sweeps.search.record import config_front, config_summaries

    configs = config_summaries(trials)
    front = config_front(configs)
    front_truth = tuple(truth_of(c.number) for c in front)
    baseline_truth = tuple((c.baseline, truth_of(c.number)) for c in configs if c.baseline)
    chosen = None
    if claims:
        try:
            chosen = choose(front)
        except NoFinishedTrialsError:
            pass
    made: list[Claim] = []
    if chosen is not None:
        if spec is None:
            raise ValueError("handover: the claims need the sweep's spec")
        truth = truth_of(chosen.number)
        for v in sweep_claims(spec, chosen, configs).verdicts:
            base = dict(baseline_truth)[v.baseline]
            i = OBJECTIVE_KEYS.index(v.objective)
            made.append(Claim(baseline=v.baseline, objective=v.objective, verdict=v.verdict, observed=float(v.difference),
                              true=float(truth[i] - base[i]), seeds_needed=v.seeds_needed, margin=float(v.margin)))
    return Handover(
        front=tuple(c.number for c in front), front_truth=front_truth,
        true_hypervolume=true_hypervolume(front_truth, reference),
        chosen=None if chosen is None else chosen.number,
        chosen_baseline=None if chosen is None else chosen.baseline,
        chosen_truth=None if chosen is None else truth_of(chosen.number),
        chosen_seeds=0 if chosen is None else len(chosen.noise),
        baseline_truth=baseline_truth, claims=tuple(made),
        front_means=tuple((float(c.values[0]), float(c.values[1])) for c in front),
        confirmed_hypervolume=true_hypervolume([tuple(c.values) for c in front], reference),
    )


def reference_point(surrogate: Any, baseline: str = "dense", accuracy_percentile: float = 10.0) -> tuple[float, float]:
    """The hypervolume's reference point, from the truth model (never a tested draw):

    * accuracy: the ``accuracy_percentile`` of the true final accuracy over the table's design
      configs (a config less accurate than nine in ten random ones adds nothing);
    * noise: the ``baseline``'s true final noise score / max (the mean of its recorded seeds), so
      a config counts only where it is truly more robust than dense, and dense is worth 0."""
    table = surrogate.table
    design = [r["params"] for r in table.searched() if r["kind"] == "design"]
    acc, _ = surrogate.mean(design)
    _, noise = surrogate.truth(None, baseline=baseline)
    value = float(np.percentile(acc[:, -1], accuracy_percentile))
    if not (math.isfinite(value) and math.isfinite(noise)):
        raise ValueError("reference point: not finite")
    return value, noise
