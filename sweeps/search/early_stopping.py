"""The early-stopping rule: asynchronous successive halving (ASHA), on one metric or on both
objectives (MO-ASHA). Pure Python over `TrialReport`s; `sweeps.run.tune.RungScheduler` runs it under
Ray Tune and `sweeps.replay` runs it in simulated time, so both stop the same trials.

Rungs sit at ``grace_period * reduction_factor**k`` epochs below the last epoch. The first time a
trial reports at or past a rung it is compared with the trials recorded at that rung before it:

* ``rule: accuracy`` (ASHA, Li et al. 2020, as Ray's ``ASHAScheduler``): it goes on when its
  ``metric`` is at or above the ``1 - 1/reduction_factor`` quantile of the recorded values;
* ``rule: pareto`` (MO-ASHA, Schmucker et al. 2021): it goes on when it is among the best
  ``ceil(n / reduction_factor)`` of the ``n`` trials at the rung (itself included) by
  non-dominated sorting of (validation accuracy, validation noise score), ties within a rank broken
  by crowding distance (NSGA-II's order, `sweeps.search.pareto.promotion_order`). The trial measures its
  noise score at the rung epochs for this (`needs_noise`).

A trial the rule stops ends PRUNED in Optuna.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Hashable

import numpy as np

from sweeps.search.pareto import promotion_order
from sweeps.search.trial_report import TrialReport


__all__ = ["SuccessiveHalving", "RULES"]

RULES = ("accuracy", "pareto")


def rung_epochs(max_epochs: int, grace_period: int, reduction_factor: float) -> tuple[int, ...]:
    """The decision epochs: grace_period * rf**k below ``max_epochs`` (Ray's ASHA milestones)."""
    out, k = [], 0
    while True:
        epoch = int(grace_period * reduction_factor**k)
        if epoch >= max_epochs:
            return tuple(out)
        if not out or epoch > out[-1]:
            out.append(epoch)
        k += 1


@dataclass
class SuccessiveHalving:
    max_epochs: int
    grace_period: int = 1
    reduction_factor: float = 3.0
    rule: str = "accuracy"
    metric: str = "val_accuracy"  # rule "accuracy" only
    mode: str = "max"
    rungs: tuple[int, ...] = field(init=False)
    _recorded: dict[int, dict[Hashable, object]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"early_stopping.rule={self.rule!r}: choose one of {', '.join(RULES)}")
        self.rungs = rung_epochs(self.max_epochs, self.grace_period, self.reduction_factor)
        self._recorded = {r: {} for r in self.rungs}

    def needs_noise(self, epoch: int) -> bool:
        """Whether a trial must measure its validation noise score after ``epoch`` for the rule."""
        return self.rule == "pareto" and epoch in self.rungs

    def _value(self, report: TrialReport):
        if self.rule == "pareto":
            return report.objectives
        value = report.val_accuracy if self.metric == "val_accuracy" else report.metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        return value if self.mode == "max" else -value

    def decide(self, key: Hashable, report: TrialReport) -> bool:
        """Record ``report`` of trial ``key`` and say whether it goes on (True) or stops (False)."""
        if report.final or report.epoch >= self.max_epochs:
            return True  # it has finished; nothing to stop
        for rung in reversed(self.rungs):
            recorded = self._recorded[rung]
            if report.epoch < rung or key in recorded:
                continue
            value = self._value(report)
            if value is None:
                return True  # nothing to compare (a report without the rule's values)
            go_on = self._keeps(value, list(recorded.values()))
            recorded[key] = value
            return go_on
        return True

    def _keeps(self, value, others: list) -> bool:
        if not others:
            return True
        if self.rule == "accuracy":
            cutoff = np.nanpercentile(np.asarray(others, dtype=float), (1 - 1 / self.reduction_factor) * 100)
            return bool(value >= cutoff)
        points = np.asarray([value, *others], dtype=float)
        keep = math.ceil(len(points) / self.reduction_factor)
        return bool(0 in promotion_order(points)[:keep])
