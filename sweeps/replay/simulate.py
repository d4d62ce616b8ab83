"""Replay a sweep in simulated time: the service's own search code against a surrogate of real trials.

What runs is what a real sweep runs, minus Ray and training:

* `SweepStudy` (in Optuna's in-memory storage) with the spec's sampler as `sweeps.search.samplers` builds
  it, following its plan (`SweepStudy.next_proposal`): baselines first, then proposals (trials in
  flight stay RUNNING while others are asked), then, with ``spec.confirm``, the replicates of the
  front's candidates and the baselines once every searched trial has its result;
* `SuccessiveHalving` from the spec's ``early_stopping``, deciding after every simulated epoch;
* ``budget.max_concurrent`` workers (``auto``: `replay_slots`): a worker that finishes (or is stopped) asks for the next trial;
  one that gets nothing yet (the replicates wait for the search) waits for the next trial to end.

A trial's epochs take the table's median seconds per epoch (with 10 % lognormal jitter, so workers
drift apart as real ones do); its values come from `Surrogate.draw`: the config's expectation, its
model seed's effect (shared by every config of the sweep trained with that seed) and its own
deviation, keyed by (config's first trial, replicate k) so that a replicate's draw does not
depend on when it was asked. The noise objective is the noise score over its maximum, so values
lie in [0, 1].

Besides the trials, a `SimResult` holds what the service hands over at the end
(`sweeps.replay.truth.handover` on the study's trials) and the *anytime true curve*: after each
searched trial ended, the true hypervolume of what the service would hand over had the search
stopped there and confirmed then (the same candidates, the same replicate draws, the same code),
charged the epochs trained by then plus that confirmation's epochs. Everything random flows from
the ``seed``: the same seed gives the same sweep.
"""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from sweeps.search.pareto import anytime_hypervolume
from sweeps.search.study import FINISHED, SweepStudy
from sweeps.search import record as rec
from sweeps.search.trial_report import TrialReport
from .surrogate import Surrogate, World
from .truth import Handover, handover, reference_point

__all__ = ["SimTrial", "SimResult", "simulate", "virtual_handover"]


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
    truth: tuple[float, float] = (float("nan"), float("nan"))  # its config's true final values
    replicate_of: int | None = None
    replicate_k: int | None = None
    model_seed: int = 0

    @property
    def searched(self) -> bool:
        return self.baseline is None and self.replicate_of is None


@dataclass
class SimResult:
    searcher: str
    early_stopping: str | None
    seed: int
    trials: list[SimTrial] = field(default_factory=list)  # in the order they ended
    reference: tuple[float, float] = (0.0, 0.0)
    handover: Handover | None = None  # what the service hands over at the end
    # after each searched trial ended: true hypervolume of a confirmation then, and its epochs
    true_curve: tuple[float, ...] = ()
    true_epochs: tuple[int, ...] = ()

    def points(self) -> np.ndarray:
        return np.array([t.objectives for t in self.trials if t.state == "COMPLETE" and t.replicate_of is None]).reshape(-1, 2)

    def first_trials(self) -> list[SimTrial]:
        """Searched trials and baselines (replicates left out: they are no new configs)."""
        return [t for t in self.trials if t.replicate_of is None]

    def anytime(self, reference=None) -> tuple[np.ndarray, np.ndarray]:
        """Observed: after each *searched* trial ended, the hypervolume of the observed values of
        the COMPLETE searched trials and baselines ended by then, and the epochs charged by then."""
        reference = self.reference if reference is None else reference
        points, marks = [], []
        for t in self.first_trials():
            points.append(t.objectives if t.state == "COMPLETE" else (-np.inf, -np.inf))
            marks.append(t.searched)
        hv = anytime_hypervolume(points, reference)
        firsts = self.first_trials()
        keep = np.flatnonzero(marks)
        return hv[keep], np.array([firsts[i].epochs_charged for i in keep])

    def anytime_all(self, reference=None) -> np.ndarray:
        """Observed hypervolume after each first trial (baselines included) ended, as a sweep's
        report draws it (`sweeps.search.record.hypervolume_curve`)."""
        reference = self.reference if reference is None else reference
        return anytime_hypervolume([t.objectives if t.state == "COMPLETE" else (-np.inf, -np.inf)
                                    for t in self.first_trials()], reference)

    @property
    def epochs_total(self) -> int:
        return self.trials[-1].epochs_charged if self.trials else 0


# ``max_concurrent: auto`` is replayed as a cluster of this many GPUs (4 GPUs fit 16 trials of the
# MNIST paper preset and 8 of the GSC one, the fixed numbers those presets had), or on CPUs as 2 workers.
REPLAY_GPUS = 4
REPLAY_CPU_WORKERS = 2


def replay_slots(spec: Any) -> int:
    """The workers a replay of ``max_concurrent: auto`` runs (see `REPLAY_GPUS`)."""
    if spec.resources.gpus > 0:
        return max(1, int(REPLAY_GPUS // spec.resources.gpus))
    return REPLAY_CPU_WORKERS


def simulate(spec: Any, surrogate: Surrogate, seed: int, mode: str = "drawn",
             reference: Sequence[float] | None = None) -> SimResult:
    """One simulated sweep of ``spec`` (its searcher seeded with ``seed``) on ``surrogate``.
    ``mode``: the model seeds' effects, "drawn" or the table's "recorded" ones (`World`)."""
    spec = dataclasses.replace(spec, searcher=dataclasses.replace(spec.searcher, seed=seed))
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one "study created" line per simulated sweep
    try:
        ref = tuple(reference) if reference is not None else reference_point(surrogate)
        return _simulate(spec, surrogate, seed, World(surrogate.noise, mode, seed), ref)
    finally:
        optuna.logging.set_verbosity(level)


def _draw(surrogate: Surrogate, world: World, spec: Any, params: dict[str, Any], baseline: str | None,
          source: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-th seed (0: the first trial) of the config whose first trial is ``source``."""
    seed = spec.seed if k == 0 else spec.replicate_seed(k)
    return surrogate.draw(None if baseline else params, baseline, seed, world, key=(source, k))


def _simulate(spec: Any, surrogate: Surrogate, seed: int, world: World, reference: tuple[float, float]) -> SimResult:
    study = SweepStudy.in_memory(spec.study_plan())
    rule = spec.stopping_rule()
    rng = np.random.default_rng([seed, 20260])
    E = spec.epochs
    result = SimResult(spec.searcher.algorithm, None if rule is None else rule.rule, seed, reference=reference)
    events: list[tuple[float, int, int]] = []  # (time, tie-break, trial number)
    running: dict[int, dict[str, Any]] = {}
    counters = {"epochs": 0, "seq": 0, "idle": 0}
    truths: dict[int, tuple[float, float]] = {}  # first-trial number -> true final values

    def start(now: float) -> bool:
        pending = len(running)
        p = study.next_proposal()
        if p is None or p == FINISHED:
            return False
        source = p.number if p.replicate_of is None else p.replicate_of
        k = 0 if p.replicate_of is None else p.seed - spec.seed
        if p.replicate_of is None:
            truths[p.number] = surrogate.truth(None if p.baseline else p.params, p.baseline)
        acc, noise = _draw(surrogate, world, spec, p.params, p.baseline, source, k)
        pace = float(rng.lognormal(0.0, 0.1))
        running[p.number] = {"p": p, "acc": acc[:E], "noise": noise[:E], "epoch": 0, "pace": pace, "pending": pending,
                             "source": source, "k": k}
        push(now, p.number)
        return True

    def fill(now: float, free: int) -> None:
        for _ in range(free):
            if not start(now):
                counters["idle"] += 1

    def push(now: float, number: int) -> None:
        state = running[number]
        counters["seq"] += 1
        heapq.heappush(events, (now + surrogate.seconds[state["epoch"]] * state["pace"], counters["seq"], number))

    def end(now: float, number: int, state_name: str, report: TrialReport) -> None:
        st = running.pop(number)
        study.tell(number, report)
        e = st["epoch"]
        p = st["p"]
        result.trials.append(SimTrial(
            number=number, baseline=p.baseline, params=p.params, state=state_name, epochs=e,
            finished_at=now, epochs_charged=counters["epochs"],
            objectives=(float(st["acc"][e - 1]), float(st["noise"][e - 1])), pending_at_ask=st["pending"],
            truth=truths[st["source"]], replicate_of=p.replicate_of, replicate_k=st["k"] or None,
            model_seed=spec.seed if p.seed is None else p.seed,
        ))
        free, counters["idle"] = 1 + counters["idle"], 0
        fill(now, free)

    fill(0.0, spec.budget.concurrency(replay_slots(spec)))
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
                             baseline=st["p"].baseline or "", noise_max=1.0)  # the table's scores are shares of it
        if final:
            end(now, number, "COMPLETE", report)
        elif rule is not None and st["p"].replicate_of is None and not rule.decide(number, report):
            end(now, number, "PRUNED", report)
        else:
            push(now, number)
    if study.next_proposal() != FINISHED:
        raise RuntimeError(f"simulated sweep {spec.name} seed {seed}: the plan did not finish")
    result.handover = handover(study.study.get_trials(deepcopy=False), truths.__getitem__, reference, spec=spec)
    curve, epochs = [], []
    firsts = result.first_trials()
    for n, t in enumerate(firsts, 1):
        if t.searched:
            h, extra = virtual_handover(firsts[:n], surrogate, world, spec, reference)
            curve.append(h.true_hypervolume)
            epochs.append(t.epochs_charged + extra)
    result.true_curve, result.true_epochs = tuple(curve), tuple(epochs)
    return result


def _record(number: int, state: str, values: tuple[float, float] | None, attrs: dict[str, Any],
            params: dict[str, Any]) -> SimpleNamespace:
    """A stand-in for an Optuna trial with what `sweeps.search.record.config_summaries` reads."""
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state),
                           values=None if values is None else list(values), user_attrs=attrs, params=params)


def virtual_handover(ended: Sequence[SimTrial], surrogate: Surrogate, world: World, spec: Any,
                     reference: Sequence[float]) -> tuple[Handover, int]:
    """What the service would hand over had the search stopped after ``ended`` (first trials,
    in the order they ended) and confirmed then: the replicates `SweepStudy.replicates_left` plans
    (the same candidates by the same code, the same draws), through `handover`. Returns it and the
    confirmation's epochs."""
    from sweeps.search.confirm import candidates

    ordered = sorted(ended, key=lambda t: t.number)
    records = []
    for t in ordered:
        attrs: dict[str, Any] = {rec.CONFIG: ({rec.BASELINE: t.baseline} if t.baseline else {}) | dict(t.params)}
        if t.baseline:
            attrs[rec.BASELINE] = t.baseline
        records.append(_record(t.number, t.state, t.objectives if t.state == "COMPLETE" else None, attrs, t.params))
    truths = {t.number: t.truth for t in ordered}
    confirm = spec.confirm
    extra = 0
    if confirm is not None:
        searched = [t for t in ordered if t.searched and t.state == "COMPLETE"]
        sources = [searched[i] for i in candidates([t.objectives for t in searched], confirm.top)]
        for b in spec.baselines:  # each baseline's first trial, as the study takes it
            sources += [t for t in ordered if t.baseline == b.name][:1]
        number = max((t.number for t in ordered), default=0) + 1
        for src in sources:
            for k in range(1, confirm.seeds + 1):
                acc, noise = _draw(surrogate, world, spec, src.params, src.baseline, src.number, k)
                attrs = {rec.REPLICATE_OF: src.number, rec.REPLICATE_K: k, rec.MODEL_SEED: spec.replicate_seed(k)}
                if src.baseline:
                    attrs[rec.BASELINE] = src.baseline
                records.append(_record(number, "COMPLETE", (float(acc[spec.epochs - 1]), float(noise[spec.epochs - 1])),
                                       attrs, {}))
                number += 1
                extra += spec.epochs
    return handover(records, truths.__getitem__, reference, claims=False), extra
