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
    "HypervolumeData",
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


def pareto_data(trials: Sequence[Any], front: frozenset[int] = frozenset(), chosen: int | None = None) -> ParetoData:
    """Every complete trial as a point (validation accuracy %, validation noise score), flagged
    when on the Pareto front (``front``: trial numbers, as the service computed it), when a dense
    baseline, and when it is the chosen config."""
    points = tuple(
        ParetoPoint(
            number=t.number, accuracy_percent=100.0 * t.values[0], noise_score=float(t.values[1]),
            on_front=t.number in front, baseline=t.user_attrs.get("baseline", "") or "",
            chosen=t.number == chosen,
        )
        for t in _complete(trials)
    )
    front = tuple(sorted((p for p in points if p.on_front), key=lambda p: p.accuracy_percent))
    return ParetoData(points, front)


def overlay_curves(trials: Sequence[Any], front: frozenset[int] = frozenset(), best: int = 3) -> list[CurveSeries]:
    """The dense baselines' validation noise curves against the ``best`` sparse configs' (by
    noise score, among the Pareto-front trials ``front``, falling back to all complete trials)."""
    done = [t for t in _complete(trials) if "val_curve" in t.user_attrs]
    baselines = [t for t in done if t.user_attrs.get("baseline")]
    searched = [t for t in done if not t.user_attrs.get("baseline")]
    front = [t for t in searched if t.number in front] or searched
    top = sorted(front, key=lambda t: -t.values[1])[:best]
    return [curve_series(_label(t), t.user_attrs["val_curve"], baseline=True) for t in baselines] + [
        curve_series(_label(t), t.user_attrs["val_curve"]) for t in top
    ]


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


def pareto_table(trials: Sequence[Any], front: frozenset[int]) -> list[dict[str, Any]]:
    """Rows for the Pareto configs (``front``: trial numbers): number, baseline, objectives, test
    figures, parameters; by decreasing accuracy."""
    data = pareto_data(trials, front)
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
