"""Plot data, computed in plain functions (tested), separate from drawing (`dashboards.render`).

Inputs are plain data: one `TrialData` per trial (its number, state, values, params, baseline
name, validation noise curve, test figures), which the sweep service builds from its record
(`sweeps.results.read.plain_trials`). Nothing here knows how the service stores a trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = [
    "TrialData",
    "ConfigEstimate",
    "CurveSeries",
    "ParetoPoint",
    "ParetoData",
    "curve_series",
    "pareto_data",
    "overlay_curves",
    "HypervolumeData",
    "pareto_table",
]


@dataclass(frozen=True)
class TrialData:
    """One trial as the report draws it. ``baseline``: its baseline's name ("" for a searched
    config); ``replicate``: a seed replicate of another config (no new point); ``params``: its
    config as shown; ``distributions``: the searched params' Optuna distributions (importances)."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING ...
    values: tuple[float, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    distributions: Mapping[str, Any] = field(default_factory=dict)
    searched: Mapping[str, Any] = field(default_factory=dict)  # the sampled params alone
    baseline: str = ""
    replicate: bool = False
    val_curve: Mapping[str, Any] | None = None
    test_accuracy: float | None = None
    test_noise_score: float | None = None


def _complete(trials: Sequence[TrialData]) -> list[TrialData]:
    return [t for t in trials if t.state == "COMPLETE" and t.values]


def _label(t: TrialData) -> str:
    return f"#{t.number} {t.baseline}" if t.baseline else f"#{t.number}"


@dataclass(frozen=True)
class ConfigEstimate:
    """One config over its seeds, as the service estimated it: (mean, low, high) of each objective
    (low and high NaN with one seed; a 95 % interval otherwise) and of its validation noise curve's
    accuracy at each level. ``trials``: the trial numbers its figures rest on."""

    number: int  # its first trial
    seeds: int
    accuracy: tuple[float, float, float]
    noise: tuple[float, float, float]
    trials: tuple[int, ...] = ()
    curve_levels: tuple[float, ...] = ()
    curve: tuple[tuple[float, float, float], ...] = ()  # per level: (mean, low, high) accuracy


@dataclass(frozen=True)
class CurveSeries:
    label: str
    levels: tuple[float, ...]
    accuracy_percent: tuple[float, ...]
    baseline: bool = False
    low_percent: tuple[float, ...] = ()  # a 95 % band over seeds, when there are several
    high_percent: tuple[float, ...] = ()


def curve_series(label: str, curve: dict[str, Any], baseline: bool = False) -> CurveSeries:
    """A noise curve (`NoiseCurve.to_dict()` form) as x = levels, y = accuracy in percent."""
    levels = tuple(float(v) for v in curve["levels"])
    return CurveSeries(label, levels, tuple(100.0 * float(a) for a in curve["accuracies"]), baseline)


@dataclass(frozen=True)
class ParetoPoint:
    number: int
    accuracy_percent: float
    noise_score: float
    on_front: bool
    baseline: str  # "" for searched configs
    chosen: bool
    seeds: int = 1
    accuracy_interval: tuple[float, float] | None = None  # 95 % over seeds, in percent
    noise_interval: tuple[float, float] | None = None
    params: tuple[tuple[str, Any], ...] = ()  # the config's values, as the hover shows them
    link: str = ""  # its MLflow run in the dashboard, when the report knows where that is


@dataclass(frozen=True)
class ParetoData:
    points: tuple[ParetoPoint, ...]
    front: tuple[ParetoPoint, ...] = field(default=())  # on-front points, by accuracy (the step line)


def _interval(mean_low_high: tuple[float, float, float], scale: float = 1.0) -> tuple[float, float] | None:
    _, low, high = mean_low_high
    return None if math.isnan(low) else (scale * low, scale * high)


def _params(t: TrialData | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(t.params.items())) if t is not None else ()


def pareto_data(trials: Sequence[Any], front: frozenset[int] = frozenset(), chosen: int | None = None,
                configs: Sequence[ConfigEstimate] = (), links: Mapping[int, str] | None = None) -> ParetoData:
    """Every complete trial as a point (validation accuracy %, validation noise score), flagged
    when on the Pareto front (``front``: trial numbers, as the service computed it), when a dense
    baseline, and when it is the chosen config, with its parameters and (``links``: trial number
    -> URL) its MLflow run. With ``configs``, one point per config instead, at its means over
    seeds, with its 95 % intervals (seed replicates fold into their config)."""
    links = links or {}
    by_number = {t.number: t for t in trials}
    if configs:
        baselines = {t.number: t.baseline for t in trials}
        points = tuple(
            ParetoPoint(
                number=c.number, accuracy_percent=100.0 * c.accuracy[0], noise_score=float(c.noise[0]),
                on_front=c.number in front, baseline=baselines.get(c.number, ""),
                chosen=c.number == chosen, seeds=c.seeds, accuracy_interval=_interval(c.accuracy, 100.0),
                noise_interval=_interval(c.noise), params=_params(by_number.get(c.number)),
                link=links.get(c.number, ""),
            )
            for c in configs
        )
    else:
        points = tuple(
            ParetoPoint(
                number=t.number, accuracy_percent=100.0 * t.values[0], noise_score=float(t.values[1]),
                on_front=t.number in front, baseline=t.baseline,
                chosen=t.number == chosen, params=_params(t), link=links.get(t.number, ""),
            )
            for t in _complete(trials)
        )
    front = tuple(sorted((p for p in points if p.on_front), key=lambda p: p.accuracy_percent))
    return ParetoData(points, front)


def overlay_curves(trials: Sequence[Any], front: frozenset[int] = frozenset(), best: int = 3,
                   configs: Sequence[ConfigEstimate] = ()) -> list[CurveSeries]:
    """The dense baselines' validation noise curves against the ``best`` sparse configs' (by
    noise score, among the Pareto-front trials ``front``, falling back to all complete trials).
    A config in ``configs`` with a curve over several seeds is drawn at its mean, with its band."""
    done = [t for t in _complete(trials) if t.val_curve and not t.replicate]
    bands = {c.number: c for c in configs if c.curve}
    noise = {c.number: c.noise[0] for c in configs}
    baselines = [t for t in done if t.baseline]
    searched = [t for t in done if not t.baseline]
    front = [t for t in searched if t.number in front] or searched
    top = sorted(front, key=lambda t: -noise.get(t.number, t.values[1]))[:best]

    def series(t: Any, baseline: bool) -> CurveSeries:
        c = bands.get(t.number)
        if c is None:
            return curve_series(_label(t), dict(t.val_curve), baseline=baseline)
        return CurveSeries(f"{_label(t)} ({c.seeds} seeds)", c.curve_levels, tuple(100.0 * m for m, _, _ in c.curve),
                           baseline, tuple(100.0 * lo for _, lo, _ in c.curve), tuple(100.0 * hi for _, _, hi in c.curve))

    return [series(t, True) for t in baselines] + [series(t, False) for t in top]


@dataclass(frozen=True)
class HypervolumeData:
    """A sweep's hypervolume after each trial ended, as the service computed it (both objectives
    scaled to [0, 1]: accuracy, noise score / its maximum), and optionally random search's expected
    curve from the replay benchmark (median and quartiles over its simulated sweeps)."""

    reference_point: tuple[float, float]
    trials: tuple[int, ...] = ()  # trials ended so far (x)
    values: tuple[float, ...] = ()
    expected_trials: tuple[int, ...] = ()
    expected_median: tuple[float, ...] = ()
    expected_q1: tuple[float, ...] = ()
    expected_q3: tuple[float, ...] = ()
    expected_label: str = ""


def pareto_table(trials: Sequence[Any], front: frozenset[int], configs: Sequence[ConfigEstimate] = ()) -> list[dict[str, Any]]:
    """Rows for the Pareto configs (``front``: trial numbers): number, baseline, objectives (with
    seeds and 95 % intervals when ``configs`` are given), test figures, parameters; by decreasing
    accuracy."""
    data = pareto_data(trials, front, configs=configs)
    by_number = {t.number: t for t in trials}
    rows = []
    for p in sorted(data.front, key=lambda p: -p.accuracy_percent):
        t = by_number[p.number]
        test_acc = t.test_accuracy
        extra: dict[str, Any] = {}
        if configs:
            extra = {"seeds": p.seeds,
                     "val accuracy % 95% CI": None if p.accuracy_interval is None
                     else [round(v, 2) for v in p.accuracy_interval],
                     "val noise score 95% CI": None if p.noise_interval is None
                     else [int(round(v)) for v in p.noise_interval]}
        rows.append({
            "trial": p.number,
            "baseline": p.baseline,
            "val accuracy %": round(p.accuracy_percent, 2),
            "val noise score": int(p.noise_score),
            **extra,
            "test accuracy %": None if test_acc is None or math.isnan(test_acc) else round(100 * test_acc, 2),
            "test noise score": None if t.test_noise_score is None else int(t.test_noise_score),
            "params": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in t.params.items()},
        })
    return rows


# fANOVA's forest: Optuna's default (64 trees, depth 64) costs about 4 minutes per objective at
# 2,000 trials; 16 trees of depth <= 8 (at most 256 leaves each) keep it near a second at any size
# (benchmarks/bench_cli.py, docs/benchmarks/cli-times.md).
FANOVA_TREES = 16
FANOVA_DEPTH = 8


def importances(trials: Sequence[Any], objectives: Sequence[str] = ("val_accuracy", "val_noise_score"),
                seed: int = 0) -> dict[str, dict[str, float]]:
    """Parameter importances (Optuna's fANOVA evaluator, a bounded forest: `FANOVA_TREES` trees of
    depth <= `FANOVA_DEPTH`) for each objective, over the searched trials (baselines have no sampled
    params). Empty when fewer than two trials vary a parameter."""
    import optuna

    searched = [t for t in _complete(trials) if t.searched and not t.baseline]
    if len(searched) < 2:
        return {}
    names = set.intersection(*(set(t.searched) for t in searched))
    # One in-memory study holds every searched trial with all objectives; each is scored as a target.
    study = optuna.create_study(directions=["maximize"] * len(objectives))
    study.add_trials([
        optuna.trial.create_trial(
            params={k: t.searched[k] for k in names}, distributions={k: t.distributions[k] for k in names},
            values=[float(v) for v in t.values[: len(objectives)]],
        )
        for t in searched
    ])
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(objectives):
        try:
            out[name] = dict(optuna.importance.get_param_importances(
                study, target=lambda t, i=i: t.values[i],
                evaluator=optuna.importance.FanovaImportanceEvaluator(
                    n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=seed)))
        except (RuntimeError, ValueError):  # every trial identical in some way fANOVA cannot split
            out[name] = {}
    return out
