"""A small synthetic replay table (same schema as the recorded one) for fast simulator tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from sweeps.spec import load_spec

SPEC = Path(__file__).resolve().parents[1] / "benchmarks" / "specs" / "replay-mnist.yaml"


def _curve(params: dict, seed: int, epochs: int, rng, shift: float = 0.0, extra: float = 0.0,
           flat: bool = False) -> list[dict]:
    # Accuracy rises with lr and k; robustness rises as k falls: a real trade-off (flat: the same
    # truth everywhere, the space's middle).
    k, d, b, lr = params["percent_on"], params["weight_density"], params["boost_strength"], params["lr"]
    if flat:
        k, d, b, lr = 0.2, 0.5, 1.0, 0.02
    out = []
    for e in range(1, epochs + 1):
        acc = 0.97 - 0.02 / e - 0.03 * abs(np.log(lr / 0.02)) - 0.02 * (0.4 - k) + 0.003 * b + rng.normal(0, 0.002)
        noise = 0.55 + 0.5 * (0.4 - k) - 0.05 * d + 0.01 * e + shift + rng.normal(0, 0.01) + (rng.normal(0, extra) if extra else 0.0)
        out.append({"epoch": e, "val_accuracy": float(acc), "val_noise_score": float(noise * 6600),
                    "noise_max": 6600, "seconds": 5.0})
    return out


def write_table(path: Path, configs: int = 60, repeats: int = 3, seed_shift: dict[int, float] | None = None,
                design_noise: float = 0.0, flat: bool = False, baseline_seeds: int = 3,
                baseline_noise: float = 0.0) -> Path:
    """``seed_shift``: a common effect of each model seed on the noise score of the repeats (and
    of the design rows' seed 0), as the real table shows. ``design_noise``: extra spread of the
    noise score of the design rows that are not repeated, which the noise model's data (the
    repeated configs) do not show. ``flat``:
    every config has the same truth. ``baseline_noise``: each baseline run's own deviation (sd) on
    the noise score, as a dense net's larger spread."""
    seed_shift = seed_shift or {}
    spec = load_spec(SPEC)
    rng = np.random.default_rng(0)
    rows = []
    design = []
    for i in range(configs):
        p = {"percent_on": float(np.exp(rng.uniform(np.log(0.05), np.log(0.4)))),
             "weight_density": float(rng.uniform(0.1, 1.0)), "boost_strength": float(rng.uniform(0, 2)),
             "lr": float(np.exp(rng.uniform(np.log(0.005), np.log(0.05))))}
        design.append(p)
        rows.append({"id": f"design-{i}", "kind": "design", "params": p, "seed": 0, "error": None,
                     "epochs": _curve(p, 0, spec.epochs, rng, seed_shift.get(0, 0.0), design_noise if i >= repeats else 0.0, flat)})
    for i in range(repeats):
        for s in (1, 2):
            rows.append({"id": f"design-{i}-seed{s}", "kind": "repeat", "of": f"design-{i}", "params": design[i],
                         "seed": s, "error": None,
                         "epochs": _curve(design[i], s, spec.epochs, rng, seed_shift.get(s, 0.0), flat=flat)})
    for b in spec.baselines:
        for s in range(baseline_seeds):
            own = rng.normal(0, baseline_noise) if baseline_noise else 0.0
            ep = [{"epoch": e, "val_accuracy": 0.965 + 0.001 * s, "val_noise_score": (0.6 + seed_shift.get(s, 0.0) + own) * 6600,
                   "noise_max": 6600, "seconds": 5.0} for e in range(1, spec.epochs + 1)]
            rows.append({"id": f"baseline-{b.name}-seed{s}", "kind": "baseline", "baseline": b.name,
                         "params": dict(b.params), "seed": s, "error": None, "epochs": ep})
    header = {"format": "sparse-sweeps replay table", "version": 1, "spec": spec.to_dict(), "commit": "test",
              "machine": {"cpu": "test"}}
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path
