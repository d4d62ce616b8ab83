"""Plot data, computed in plain functions (tested), separate from drawing (`dashboards.render`).

Inputs are Optuna `FrozenTrial`-like objects (``number``, ``state``, ``values``, ``params``,
``user_attrs``, ``datetime_start``, ``datetime_complete``): the study holds every objective value,
each trial's validation noise curve (``val_curve``) and its baseline name, so a report needs no
other store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = [
    "CurveSeries",
    "ParetoPoint",
    "ParetoData",
    "curve_series",
    "pareto_data",
    "overlay_curves",
    "hypervolume_2d",
    "hypervolume_over_time",
    "pareto_table",
]


def _complete(trials: Sequence[Any]) -> list[Any]:
    return [t for t in trials if getattr(t.state, "name", str(t.state)) == "COMPLETE" and t.values]


def _label(t: Any) -> str:
    baseline = t.user_attrs.get("baseline")
    return f"#{t.number} {baseline}" if baseline else f"#{t.number}"


@dataclass(frozen=True)
class CurveSeries:
    label: str
    levels: tuple[float, ...]
    accuracy_percent: tuple[float, ...]
    baseline: bool = False


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


@dataclass(frozen=True)
class ParetoData:
    points: tuple[ParetoPoint, ...]
    front: tuple[ParetoPoint, ...] = field(default=())  # on-front points, by accuracy (the step line)


def front_flags(values: Sequence[tuple[float, float]]) -> list[bool]:
    """For each point (both objectives maximized), whether no other point dominates it (is >= in
    both and differs); equal points are all kept. One sort and one pass: O(n log n)."""
    order = sorted(range(len(values)), key=lambda i: (-values[i][0], -values[i][1]))
    flags = [False] * len(values)
    best_y, i = -math.inf, 0
    while i < len(order):
        p, j = values[order[i]], i
        while j < len(order) and values[order[j]] == p:  # a run of equal points
            j += 1
        if p[1] > best_y:  # every earlier point has a larger x (or the same x and a larger y)
            for k in order[i:j]:
                flags[k] = True
        best_y = max(best_y, p[1])
        i = j
    return flags


def pareto_data(trials: Sequence[Any], chosen: int | None = None) -> ParetoData:
    """Every complete trial as a point (validation accuracy %, validation noise score), flagged
    when on the Pareto front, when a dense baseline, and when it is the chosen config."""
    done = _complete(trials)
    values = [(t.values[0], t.values[1]) for t in done]
    points = tuple(
        ParetoPoint(
            number=t.number, accuracy_percent=100.0 * t.values[0], noise_score=float(t.values[1]),
            on_front=on_front, baseline=t.user_attrs.get("baseline", "") or "",
            chosen=t.number == chosen,
        )
        for t, on_front in zip(done, front_flags(values))
    )
    front = tuple(sorted((p for p in points if p.on_front), key=lambda p: p.accuracy_percent))
    return ParetoData(points, front)


def overlay_curves(trials: Sequence[Any], best: int = 3) -> list[CurveSeries]:
    """The dense baselines' validation noise curves against the ``best`` sparse configs' (by
    noise score, among Pareto-front trials, falling back to all complete trials)."""
    done = [t for t in _complete(trials) if "val_curve" in t.user_attrs]
    baselines = [t for t in done if t.user_attrs.get("baseline")]
    searched = [t for t in done if not t.user_attrs.get("baseline")]
    on_front = {t.number for t, f in zip(done, front_flags([(t.values[0], t.values[1]) for t in done])) if f}
    front = [t for t in searched if t.number in on_front] or searched
    top = sorted(front, key=lambda t: -t.values[1])[:best]
    return [curve_series(_label(t), t.user_attrs["val_curve"], baseline=True) for t in baselines] + [
        curve_series(_label(t), t.user_attrs["val_curve"]) for t in top
    ]


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float] = (0.0, 0.0)) -> float:
    """Area dominated by ``points`` (both objectives maximized) above ``reference``."""
    pts = sorted({(x, y) for x, y in points if x > reference[0] and y > reference[1]}, key=lambda p: -p[0])
    area, best_y = 0.0, reference[1]
    for x, y in pts:  # by decreasing x: each point adds the strip above the best y so far
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return area


def hypervolume_over_time(trials: Sequence[Any]) -> list[tuple[float, float]]:
    """(seconds since the first trial started, hypervolume of the front so far), one point per
    completed trial in completion order. Objectives scaled to [0, 1]: accuracy as is, the noise
    score by its maximum (``noise_max`` user attr: samples x levels); reference point (0, 0)."""
    done = [t for t in _complete(trials) if t.datetime_complete is not None]
    if not done:
        return []
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    fallback = max(x.values[1] for x in done) or 1.0
    out, front, hv = [], [], 0.0
    for t in sorted(done, key=lambda t: t.datetime_complete):
        noise_max = float(t.user_attrs.get("noise_max") or 0) or fallback
        p = (t.values[0], t.values[1] / noise_max)
        if not any(f[0] >= p[0] and f[1] >= p[1] for f in front):  # else the area is unchanged
            front = [f for f in front if not (p[0] >= f[0] and p[1] >= f[1])] + [p]
            hv = hypervolume_2d(front)  # the front so far: a handful of points
        out.append(((t.datetime_complete - start).total_seconds(), hv))
    return out


def pareto_table(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows for the Pareto configs: number, baseline, objectives, test figures, parameters."""
    data = pareto_data(trials)
    by_number = {t.number: t for t in trials}
    rows = []
    for p in sorted(data.front, key=lambda p: -p.accuracy_percent):
        t = by_number[p.number]
        test_acc = t.user_attrs.get("test_accuracy")
        rows.append({
            "trial": p.number,
            "baseline": p.baseline,
            "val accuracy %": round(p.accuracy_percent, 2),
            "val noise score": int(p.noise_score),
            "test accuracy %": None if test_acc is None or math.isnan(test_acc) else round(100 * test_acc, 2),
            "test noise score": None if t.user_attrs.get("test_noise_score") is None else int(t.user_attrs["test_noise_score"]),
            "params": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in (t.user_attrs.get("config") or t.params).items()},
        })
    return rows


# fANOVA's forest: Optuna's default (64 trees, depth 64) costs about 4 minutes per objective at
# 2,000 trials; 16 trees of depth <= 8 (at most 256 leaves each) keep it near a second at any size
# (benchmarks/bench_cli.py, docs/benchmarks.md).
FANOVA_TREES = 16
FANOVA_DEPTH = 8


def importances(trials: Sequence[Any], objectives: Sequence[str] = ("val_accuracy", "val_noise_score"),
                seed: int = 0) -> dict[str, dict[str, float]]:
    """Parameter importances (Optuna's fANOVA evaluator, a bounded forest: `FANOVA_TREES` trees of
    depth <= `FANOVA_DEPTH`) for each objective, over the searched trials (baselines have no sampled
    params). Empty when fewer than two trials vary a parameter."""
    import optuna

    searched = [t for t in _complete(trials) if t.params and not t.user_attrs.get("baseline")]
    if len(searched) < 2:
        return {}
    names = set.intersection(*(set(t.params) for t in searched))
    # One in-memory study holds every searched trial with all objectives; each is scored as a target.
    study = optuna.create_study(directions=["maximize"] * len(objectives))
    study.add_trials([
        optuna.trial.create_trial(
            params={k: t.params[k] for k in names}, distributions={k: t.distributions[k] for k in names},
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
