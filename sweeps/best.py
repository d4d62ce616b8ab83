"""Pick one config from the Pareto front by a stated rule, and write it as a rebuildable YAML.

Rules:
* ``min_accuracy=A``: among front configs with validation accuracy >= A, the highest noise score.
* ``knee`` (default): after scaling both objectives to [0, 1] over the front, the config farthest
  from the straight line joining the front's two ends (the best trade-off); with fewer than three
  front points, the one with the larger sum of scaled objectives.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import yaml

from sparsity.network_spec import NetworkSpec

from .errors import SpecError
from .spec import SweepSpec

__all__ = ["NoFinishedTrialsError", "choose", "knee_index", "best_config", "dense_reference", "write_best"]


class NoFinishedTrialsError(SpecError):
    pass


def knee_index(points: Sequence[tuple[float, float]]) -> int:
    """Index of the knee of a 2-objective front (both maximized)."""
    if not points:
        raise ValueError("no points")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    sx = (max(xs) - min(xs)) or 1.0
    sy = (max(ys) - min(ys)) or 1.0
    scaled = [((x - min(xs)) / sx, (y - min(ys)) / sy) for x, y in points]
    if len(points) < 3:
        return max(range(len(points)), key=lambda i: sum(scaled[i]))
    a = max(range(len(points)), key=lambda i: (scaled[i][0], scaled[i][1]))  # best accuracy end
    b = max(range(len(points)), key=lambda i: (scaled[i][1], scaled[i][0]))  # best noise end
    (x1, y1), (x2, y2) = scaled[a], scaled[b]
    norm = math.hypot(x2 - x1, y2 - y1) or 1.0

    def cross(x0: float, y0: float) -> float:
        return ((x2 - x1) * (y0 - y1) - (y2 - y1) * (x0 - x1)) / norm

    towards_utopia = 1.0 if cross(1.0, 1.0) >= 0 else -1.0  # count distance on the (1, 1) side only

    def dist(i: int) -> float:
        return cross(*scaled[i]) * towards_utopia

    return max(range(len(points)), key=lambda i: (dist(i), sum(scaled[i])))


def choose(front: Sequence[Any], min_accuracy: float | None = None, rule: str = "knee") -> Any:
    """One trial from ``front`` (objects with ``.values == [val_accuracy, val_noise_score]``)."""
    if not front:
        raise NoFinishedTrialsError("the sweep has no finished trials yet, so there is no Pareto front to choose from; "
                                    "wait for trials to complete (`sweeps status NAME`) or resume it")
    if min_accuracy is not None:
        ok = [t for t in front if t.values[0] >= min_accuracy]
        if not ok:
            best = max(t.values[0] for t in front)
            raise SpecError(f"--min-accuracy {min_accuracy}: no Pareto config reaches it (best validation accuracy "
                            f"is {best:.4f}); lower it or use --rule knee")
        return max(ok, key=lambda t: (t.values[1], t.values[0]))
    if rule != "knee":
        raise SpecError(f"--rule {rule!r}: the rules are 'knee' or --min-accuracy A")
    return front[knee_index([(t.values[0], t.values[1]) for t in front])]


def best_config(spec: SweepSpec, trial: Any, rule: str) -> dict[str, Any]:
    """A YAML-ready document: the network (rebuildable with `NetworkSpec.from_dict`), the recipe,
    data, noise and seed of the experiment, plus where it came from and its scores."""
    config = dict(trial.user_attrs["config"] if "config" in trial.user_attrs else trial.params)
    exp, params, baseline = spec.trial(config)
    doc = exp.to_dict()
    doc["source"] = {
        "sweep": spec.name,
        "optuna_trial_number": trial.number,
        "ray_trial_id": trial.user_attrs.get("ray_trial_id", ""),
        "baseline": baseline or "",
        "rule": rule,
        "params": params,
        "val_accuracy": trial.values[0],
        "val_noise_score": trial.values[1],
        "test_accuracy": trial.user_attrs.get("test_accuracy"),
        "test_noise_score": trial.user_attrs.get("test_noise_score"),
        "test_curve": trial.user_attrs.get("test_curve"),
    }
    return doc


def dense_reference(trials: Sequence[Any]) -> dict[str, Any] | None:
    """Test figures of the first finished dense baseline (for the model card), if any."""
    for t in trials:
        if t.user_attrs.get("baseline") and getattr(t.state, "name", "") == "COMPLETE":
            return {"name": t.user_attrs["baseline"], "test_accuracy": t.user_attrs.get("test_accuracy"),
                    "test_noise_score": t.user_attrs.get("test_noise_score")}
    return None


def write_best(doc: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    NetworkSpec.from_dict(yaml.safe_load(out.read_text())["network"])  # it must rebuild
    return out
