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
from typing import TYPE_CHECKING, Any, Sequence

import yaml

from sparsity.network_spec import NetworkSpec

from sweeps.errors import NoFinishedTrialsError, SpecError
from sweeps.search import record as rec
from sweeps.search.record import config_of
from sweeps.spec import SweepSpec

if TYPE_CHECKING:
    from sweeps.results.read import Choice, SweepReader

__all__ = ["NoFinishedTrialsError", "choose", "knee_index", "pick", "best_config", "dense_reference", "write_best",
           "against_baselines", "claim_lines"]


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


OBJECTIVE_WORDS = {"val_accuracy": "validation accuracy", "val_noise_score": "validation noise score"}


def against_baselines(chosen: Any, configs: Sequence[Any]) -> list[dict[str, Any]]:
    """The chosen config (a `sweeps.search.record.ConfigSummary`) against each baseline of the sweep, per
    objective: `sweeps.search.confirm.compare` of the values their figures rest on, paired over the
    model seeds both were trained with (Welch's test where they share fewer than two)."""
    from sweeps.search.confirm import compare

    out = []
    for base in configs:
        if not base.baseline or base.number == chosen.number:
            continue
        out.append({
            "baseline": base.baseline,
            "val_accuracy": compare(chosen.accuracy, base.accuracy, a_seeds=_seeds(chosen), b_seeds=_seeds(base)).to_dict(),
            "val_noise_score": compare(chosen.noise, base.noise, a_seeds=_seeds(chosen), b_seeds=_seeds(base)).to_dict(),
        })
    return out


def _seeds(config: Any) -> Sequence[object] | None:
    """A config's model seed per value, None where unknown (then the test is Welch's)."""
    seeds = getattr(config, "seeds", ())
    return seeds if len(seeds) == len(config.accuracy) and len(set(seeds)) == len(seeds) else None


def claim_lines(name: str, chosen: Any, against: Sequence[dict[str, Any]]) -> list[str]:
    """What `sweeps best` says of the chosen config against each baseline: a claim only where the
    test supports it; with one seed, that it rests on one seed and the command that adds seeds."""
    if not against:
        return ["no baseline in this sweep: nothing to compare the chosen config with"]
    lines = []
    for a in against:
        parts = []
        for key in ("val_noise_score", "val_accuracy"):
            c = a[key]
            what = OBJECTIVE_WORDS[key]
            scale, unit = (100.0, " points") if key == "val_accuracy" else (1.0, "")

            def num(v: float) -> str:
                return f"{scale * v:+,.2f}{unit}" if key == "val_accuracy" else f"{v:+,.0f}"

            if c["verdict"] == "one seed":
                parts.append(f"{what} {num(c['difference'])} on one seed per config: not tested")
            elif c["verdict"] in ("better", "worse"):
                test = (f"paired t-test p={c['p_value']:.2g} over {c['n'][0]} shared seeds"
                        if c.get("test") == "paired" else f"Welch p={c['p_value']:.2g}, seeds {c['n'][0]} vs {c['n'][1]}")
                parts.append(f"{what} {c['verdict']}: {num(c['difference'])} (95% CI {num(c['low'])} to "
                             f"{num(c['high'])}, {test})")
            else:
                more = (f"; about {c['seeds_needed']} seeds per config would resolve a difference this size "
                        f"(80% power)" if c["seeds_needed"] else "")
                parts.append(f"{what} not resolved: {num(c['difference'])} (95% CI {num(c['low'])} to {num(c['high'])}, "
                             f"seeds {c['n'][0]} vs {c['n'][1]}){more}")
        lines.append(f"against {a['baseline']}: " + "; ".join(parts))
    if any(a[k]["verdict"] == "one seed" for a in against for k in ("val_accuracy", "val_noise_score")):
        lines.append(f"this comparison rests on one seed per config (the noise score varies between seeds about as "
                     f"much as configs differ); add seed replicates with: sweeps confirm {name}")
    return lines


def pick(reader: "SweepReader", min_accuracy: float | None = None, rule: str = "knee") -> tuple["Choice", dict[str, Any]]:
    """The config ``rule`` (or ``min_accuracy``) chooses from the sweep's front, and its YAML document
    (`best_config`): the one path of `sweeps best` and `sweeps export`."""
    choice = reader.choose(min_accuracy=min_accuracy, rule=rule)
    return choice, best_config(reader.spec, choice.config, choice.rule, choice.configs)


def best_config(spec: SweepSpec, trial: Any, rule: str, configs: Sequence[Any] = ()) -> dict[str, Any]:
    """A YAML-ready document: the network (rebuildable with `NetworkSpec.from_dict`), the recipe,
    data, noise and seed of the experiment, plus where it came from and its scores. With
    ``trial`` a `ConfigSummary` and the sweep's ``configs``, its seeds, estimates and the tests
    against each baseline too."""
    exp, params, baseline = spec.trial(dict(config_of(trial)))
    doc = exp.to_dict()
    doc["source"] = {
        "sweep": spec.name,
        "optuna_trial_number": trial.number,
        "ray_trial_id": trial.user_attrs.get(rec.RAY_TRIAL_ID, ""),
        "baseline": baseline or "",
        "rule": rule,
        "params": params,
        "val_accuracy": trial.values[0],
        "val_noise_score": trial.values[1],
        "test_accuracy": trial.user_attrs.get(rec.TEST_ACCURACY),
        "test_noise_score": trial.user_attrs.get(rec.TEST_NOISE_SCORE),
        "test_curve": trial.user_attrs.get(rec.TEST_CURVE),
    }
    if hasattr(trial, "estimates"):
        est = trial.estimates()
        against = against_baselines(trial, configs)
        doc["source"].update(
            seeds=len(trial.accuracy),
            replicate_trials=[r.number for r in trial.replicates],
            estimates={k: e.to_dict() for k, e in est.items()},
            against=against,
            claims=claim_lines(spec.name, trial, against),
        )
        if "test_accuracy" in est:
            doc["source"]["test_accuracy"] = est["test_accuracy"].mean
        if "test_noise_score" in est:
            doc["source"]["test_noise_score"] = est["test_noise_score"].mean
    return doc


def dense_reference(configs: Sequence[Any]) -> dict[str, Any] | None:
    """Test figures of the first baseline (`sweeps.search.record.ConfigSummary`: the mean over its
    seeds, and n) for the model card, if any."""
    for c in configs:
        if c.baseline:
            est = c.estimates()
            return {"name": c.baseline, "seeds": len(c.accuracy),
                    "test_accuracy": est["test_accuracy"].mean if "test_accuracy" in est else None,
                    "test_noise_score": est["test_noise_score"].mean if "test_noise_score" in est else None}
    return None


def write_best(doc: dict[str, Any], out: str | Path, force: bool = False) -> Path:
    """Write ``doc`` to a new file ``out`` (an existing one only with ``force``; a link never
    followed: `sweeps.files.write_new`), and check its network rebuilds."""
    from sweeps.files import write_new

    out = write_new(out, yaml.safe_dump(doc, sort_keys=False), force=force)
    NetworkSpec.from_dict(yaml.safe_load(out.read_text())["network"])  # it must rebuild
    return out
