"""Replay a sweep in simulated time: the service's own search code against a surrogate of real trials.

What runs is what a real sweep runs, minus Ray and training:

* `SweepStudy` (in Optuna's in-memory storage) with the spec's sampler as `sweeps.search.samplers` builds
  it: baselines first, then proposals; trials in flight stay RUNNING while others are asked;
* `SuccessiveHalving` from the spec's ``early_stopping``, deciding after every simulated epoch;
* ``budget.max_concurrent`` workers: a worker that finishes (or is stopped) asks for the next trial.

A trial's epochs take the table's median seconds per epoch (with 10 % lognormal jitter, so workers
drift apart as real ones do); its values come from `Surrogate.sample` (a baseline replays one of
its recorded runs). The noise objective is the noise score over its maximum, so values lie in
[0, 1]. Everything random flows from the ``seed``: the same seed gives the same sweep.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweeps.search.early_stopping import SuccessiveHalving
from sweeps.search.pareto import anytime_hypervolume
from sweeps.search.study import SweepStudy
from sweeps.search.trial_report import TrialReport
from .surrogate import Surrogate

__all__ = ["SimTrial", "SimResult", "simulate"]


@dataclass(frozen=True)
class SimTrial:
    number: int
    baseline: str | None
    params: dict[str, Any]
    state: str  # COMPLETE or PRUNED
    epochs: int  # epochs trained
    finished_at: float  # simulated seconds
    epochs_charged: int  # epochs trained by every trial of the sweep when this one ended
    objectives: tuple[float, float]  # its last (accuracy, noise score/max)
    pending_at_ask: int  # trials RUNNING in the study when the sampler proposed this one


@dataclass
class SimResult:
    searcher: str
    early_stopping: str | None
    seed: int
    trials: list[SimTrial] = field(default_factory=list)  # in the order they ended

    def points(self) -> np.ndarray:
        return np.array([t.objectives for t in self.trials if t.state == "COMPLETE"]).reshape(-1, 2)

    def anytime(self, reference) -> tuple[np.ndarray, np.ndarray]:
        """(hypervolume of the COMPLETE trials after each trial ended, epochs charged by then)."""
        points = [t.objectives if t.state == "COMPLETE" else (-np.inf, -np.inf) for t in self.trials]
        return anytime_hypervolume(points, reference), np.array([t.epochs_charged for t in self.trials])


def simulate(spec: Any, surrogate: Surrogate, seed: int) -> SimResult:
    """One simulated sweep of ``spec`` (its searcher seeded with ``seed``) on ``surrogate``."""
    spec = dataclasses.replace(spec, searcher=dataclasses.replace(spec.searcher, seed=seed))
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one "study created" line per simulated sweep
    try:
        return _simulate(spec, surrogate, seed)
    finally:
        optuna.logging.set_verbosity(level)


def _simulate(spec: Any, surrogate: Surrogate, seed: int) -> SimResult:
    study = SweepStudy.in_memory(spec)
    rule = SuccessiveHalving.from_spec(spec)
    rng = np.random.default_rng([seed, 20260])
    table, E = surrogate.table, spec.epochs
    result = SimResult(spec.searcher.algorithm, None if rule is None else rule.rule, seed)
    events: list[tuple[float, int, int]] = []  # (time, tie-break, trial number)
    running: dict[int, dict[str, Any]] = {}
    counters = {"asked": 0, "epochs": 0, "seq": 0}

    def start(now: float) -> None:
        if counters["asked"] >= spec.num_samples:
            return
        counters["asked"] += 1
        pending = len(running)
        p = study.ask()
        if p.baseline is not None:
            rows = table.baseline_rows(p.baseline)
            acc, noise, _ = table.curves([rows[int(rng.integers(len(rows)))]])
            acc, noise = acc[0], noise[0]
        else:
            acc, noise = surrogate.sample(p.params, rng)
        pace = float(rng.lognormal(0.0, 0.1))
        running[p.number] = {"p": p, "acc": acc[:E], "noise": noise[:E], "epoch": 0, "pace": pace, "pending": pending}
        push(now, p.number)

    def push(now: float, number: int) -> None:
        state = running[number]
        counters["seq"] += 1
        heapq.heappush(events, (now + surrogate.seconds[state["epoch"]] * state["pace"], counters["seq"], number))

    def end(now: float, number: int, state_name: str, report: TrialReport) -> None:
        st = running.pop(number)
        study.tell(number, report)
        e = st["epoch"]
        result.trials.append(SimTrial(
            number=number, baseline=st["p"].baseline, params=st["p"].params, state=state_name, epochs=e,
            finished_at=now, epochs_charged=counters["epochs"],
            objectives=(float(st["acc"][e - 1]), float(st["noise"][e - 1])), pending_at_ask=st["pending"],
        ))
        start(now)

    for _ in range(spec.budget.max_concurrent):
        start(0.0)
    while events:
        now, _, number = heapq.heappop(events)
        st = running[number]
        st["epoch"] += 1
        counters["epochs"] += 1
        e = st["epoch"]
        final = e == E
        measured = final or (rule is not None and rule.needs_noise(e))
        report = TrialReport(number=number, epoch=e, val_accuracy=float(st["acc"][e - 1]),
                             val_noise_score=float(st["noise"][e - 1]) if measured else None, final=final,
                             baseline=st["p"].baseline or "")
        if final:
            end(now, number, "COMPLETE", report)
        elif rule is not None and not rule.decide(number, report):
            end(now, number, "PRUNED", report)
        else:
            push(now, number)
    return result
