"""Pick one config from the Pareto front by a stated rule, and write it as a rebuildable YAML.

Rules:
* ``min_accuracy=A``: among front configs with validation accuracy >= A, the highest noise score.
* ``knee`` (default): after scaling both objectives to [0, 1] over the front, the config farthest
  from the straight line joining the front's two ends (the best trade-off); with fewer than three
  front points, the one with the larger sum of scaled objectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import yaml

from sparsity.network_spec import NetworkSpec

from sweeps.errors import NoFinishedTrialsError, SpecError
from sweeps.search import record as rec
from sweeps.search.record import config_of
from sweeps.spec import Confirm, SweepSpec

if TYPE_CHECKING:
    from sweeps.results.read import Choice, SweepReader

__all__ = ["NoFinishedTrialsError", "choose", "knee_index", "pick", "best_config", "dense_reference", "write_best",
           "SweepClaims", "sweep_claims"]


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


@dataclass(frozen=True)
class SweepClaims:
    """What a sweep claims of one config against its baselines: the verdicts
    (`sweeps.search.claims.Verdict`, one per baseline x objective), what they rest on (``basis``:
    "fresh seeds", "adjusted for the choice", or "" with no test), and the lines every command
    shows. Computed once by `sweep_claims`; `best`, `status`, the report, the model card, the YAML
    and MLflow show it as it is."""

    config: str
    basis: str
    verdicts: tuple[Any, ...]
    lines: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "basis": self.basis, "verdicts": [v.to_dict() for v in self.verdicts],
                "lines": list(self.lines)}


def _points(v: float) -> str:
    return f"{100 * v:+.2f} points" if math.isfinite(v) else "n/a"


def _score(v: float) -> str:
    return f"{v:+,.0f}" if math.isfinite(v) else "n/a"


FORMATS = {"val_accuracy": _points, "val_noise_score": _score}


def sweep_claims(spec: SweepSpec, chosen: Any, configs: Sequence[Any]) -> SweepClaims:
    """The claims of ``chosen`` (a `sweeps.search.record.ConfigSummary`) against the sweep's
    baselines, over the sweep's ``configs``: the one computation behind every claim shown
    (`sweeps.search.claims.chosen_claims` over the replicates `sweeps.search.evidence` reads, at
    the spec's margins and looks). The chosen config is picked from the confirmed candidates on
    the same seeds its claims are tested on, so its intervals are widened for that choice."""
    from sweeps.search import evidence
    from sweeps.search.claims import chosen_claims, render

    name = evidence.config_name(chosen)
    baselines = [b.name for b in spec.baselines]
    if not baselines:
        return SweepClaims(name, "", (), ("no baseline in this sweep: nothing to compare the chosen config with",))
    if chosen.baseline:
        return SweepClaims(name, "", (), (f"the chosen config is the baseline {chosen.baseline}: no claim is made "
                                          f"against the baselines",))
    if not chosen.confirmed:
        return SweepClaims(name, "", (), (f"{name} rests on one seed: no claim is tested (the noise score varies "
                                          f"between seeds about as much as configs differ); add seed replicates with: "
                                          f"sweeps confirm {spec.name}",))
    confirm = spec.confirm or Confirm()
    trials = [t for c in configs for t in (c.trial, *c.replicates)]
    top = evidence.noise_max(trials)
    design = evidence.design(confirm.margin or {}, baselines, confirm.looks, top)
    if design is None:
        return SweepClaims(name, "", (), (f"{name}: no claim is tested: no trial recorded the noise score's "
                                          f"maximum its margin is a share of",))
    reps = evidence.replicates(trials)
    among = sorted({evidence.config_name(c) for c in configs if c.confirmed and not c.baseline})
    if not any(r.config in baselines for r in reps):
        return SweepClaims(name, "", (), (f"{name}: no claim is tested: no baseline has seed replicates yet; add "
                                          f"them with: sweeps confirm {spec.name}",))
    last = min(max(r.look for r in reps), design.looks)
    cc = chosen_claims(design, reps, name, among, chosen_at_look=last)
    span = {"val_accuracy": 1.0, "val_noise_score": top}  # each objective's whole scale
    lines = tuple(render(v, FORMATS.get(v.objective, _score), span=span.get(v.objective) or math.inf)
                  for v in cc.verdicts) + (cc.sentence,)
    return SweepClaims(name, cc.basis, cc.verdicts, lines)


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
        claims = sweep_claims(spec, trial, configs)
        doc["source"].update(
            seeds=len(trial.accuracy),
            replicate_trials=[r.number for r in trial.replicates],
            estimates={k: e.to_dict() for k, e in est.items()},
            claims=list(claims.lines),
            verdicts=[v.to_dict() for v in claims.verdicts],
            claims_basis=claims.basis,
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
