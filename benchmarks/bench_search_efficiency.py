"""Search efficiency: does Optuna's TPE find a better Pareto front than random search on a fixed budget?

The budget is a small spec derived from the `mnist-quick` preset (Sparse CNN-2, same search space):
MNIST with train_limit 3000 and eval_limit 1000 (validation and test), 1 epoch, --trials searched
trials plus the dense baseline, 2 trials at a time. For each searcher seed the sweep runs twice in one
stores root, identical except for `searcher.algorithm` ("tpe" then "random"); the model seed
(`spec.seed`), data split and noise seed are the same in every run.

Measured: the hypervolume of each sweep's Pareto front in (val_accuracy, val_noise_score / max), where
max = number of noise levels x validation size (11 x 1000 here), both maximized, with reference point
(0, 0), so a front's hypervolume is in [0, 1]; and the hypervolume of the front of trials 0..i after
each trial i (in Optuna trial-number order, i.e. the order configs were proposed; the dense baseline is
trial 0 in every run). Computed with `optuna._hypervolume.compute_hypervolume` (present in optuna 5;
a 2-D sweep over sorted points is the fallback, and the two are cross-checked when both exist).

    SPARSE_SWEEPS_DATA=/path/to/data SPARSE_SWEEPS_CACHE=/tmp/sscache RAY_AUTH_MODE=disabled \\
        python benchmarks/bench_search_efficiency.py [--trials 12] [--seeds 0,1] [--root DIR] [--json out.json]

Without --root the stores go to a fresh temporary folder (kept, and printed). Each sweep pays the
fixed start-up cost of a sweep (Ray start, MLflow setup, fresh actors: ~1 min on a loaded 2-core box).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ALGORITHMS = ("tpe", "random")


def hypervolume_2d(points: Sequence[tuple[float, float]], ref: tuple[float, float] = (0.0, 0.0)) -> float:
    """Area dominated by ``points`` (both coordinates maximized) and bounded below by ``ref``."""
    pts = sorted((p for p in points if p[0] > ref[0] and p[1] > ref[1]), key=lambda p: (-p[0], -p[1]))
    area, best_y = 0.0, ref[1]
    for x, y in pts:  # x descending: each point adds the strip above the best y seen so far
        if y > best_y:
            area += (x - ref[0]) * (y - best_y)
            best_y = y
    return area


def hypervolume(points: Sequence[tuple[float, float]]) -> float:
    """Hypervolume w.r.t. (0, 0) of maximized points, by optuna's utility when it exists."""
    own = hypervolume_2d(points)
    try:
        import numpy as np
        from optuna._hypervolume import compute_hypervolume
    except ImportError:
        return own
    if not points:
        return 0.0
    hv = float(compute_hypervolume(-np.asarray(points, dtype=float), np.zeros(2)))
    if not math.isclose(hv, own, rel_tol=1e-9, abs_tol=1e-12):
        raise AssertionError(f"hypervolume mismatch: optuna {hv} vs 2-D sweep {own}")
    return hv


def derived_spec(trials: int, algorithm: str, seed: int, name: str, root: str, concurrency: int = 2):
    from sweeps.spec import SweepSpec, load_spec

    data = load_spec("mnist-quick").to_dict()
    data["name"] = name
    data["dataset"].update(train_limit=3000, eval_limit=1000)
    data["recipe"]["epochs"] = 1
    data["baselines"] = [{"name": "dense", "params": {}}]
    data["budget"].update(trials=trials, epochs=1, max_concurrent=concurrency)
    data["searcher"] = {"algorithm": algorithm, "seed": seed}
    data["stores"] = {"root": root}
    return SweepSpec.from_dict(data)


def max_noise_score(spec: Any) -> int:
    from sparsity.noise import get_noise

    levels = spec.noise.levels or get_noise(spec.noise.kind_for(spec.dataset.name)).levels
    n_val = min(spec.dataset.validation_size, spec.dataset.eval_limit or spec.dataset.validation_size)
    return len(levels) * n_val


def curve(trials: list[Any], max_noise: float) -> tuple[list[float], list[tuple[float, float]]]:
    """Hypervolume after each trial (by trial number) and the final normalized front points."""
    pts: list[tuple[float, float]] = []
    hvs = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.values:
            pts.append((float(t.values[0]), float(t.values[1]) / max_noise))
        hvs.append(hypervolume(pts))
    return hvs, pts


def run_one(trials: int, algorithm: str, seed: int, name: str, root: str) -> dict[str, Any]:
    from sweeps.service import run_sweep

    spec = derived_spec(trials, algorithm, seed, name, root)
    t = time.perf_counter()
    outcome = run_sweep(spec)
    wall = time.perf_counter() - t
    mx = max_noise_score(spec)
    hvs, pts = curve(outcome.trials, mx)
    front = [(t.number, t.user_attrs.get("baseline", ""), float(t.values[0]), float(t.values[1]))
             for t in outcome.front]
    return {
        "name": name, "algorithm": algorithm, "seed": seed, "wall_s": wall, "max_noise_score": mx,
        "hypervolume": hvs[-1] if hvs else 0.0, "curve": hvs,
        "complete": sum(1 for t in outcome.trials if t.values), "trials": len(outcome.trials),
        "front": front,
        "params": {t.number: t.user_attrs.get("config", t.params) for t in outcome.trials},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="searched trials per sweep (+1 dense baseline)")
    parser.add_argument("--seeds", default="0", help="comma-separated searcher seeds, e.g. 0,1,2")
    parser.add_argument("--root", default=None, help="stores root (default: a fresh temporary folder)")
    parser.add_argument("--prefix", default="bench-search", help="sweep names are PREFIX-ALGO-sSEED")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    root = str(Path(args.root or tempfile.mkdtemp(prefix="bench-search-")).resolve())
    from bench_sweep_overhead import code_under_test

    code = code_under_test()
    print(f"code under test: {code}")
    print(f"stores root: {root}; {args.trials} searched trials + dense baseline per sweep; seeds {seeds}")

    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        for algo in ALGORITHMS:
            name = f"{args.prefix}-{algo}-s{seed}"
            r = run_one(args.trials, algo, seed, name, root)
            runs.append(r)
            print(f"{name}: {r['complete']}/{r['trials']} complete in {r['wall_s']:.0f}s, "
                  f"hypervolume {r['hypervolume']:.4f}", flush=True)

    print()
    for seed in seeds:
        pair = {r["algorithm"]: r for r in runs if r["seed"] == seed}
        print(f"seed {seed}: hypervolume after each trial (trial 0 = dense baseline; max noise score "
              f"{pair['tpe']['max_noise_score']})")
        print(f"  {'trial':>5} " + " ".join(f"{a:>8}" for a in ALGORITHMS))
        n = max(len(pair[a]["curve"]) for a in ALGORITHMS)
        for i in range(n):
            cells = [pair[a]["curve"][i] if i < len(pair[a]["curve"]) else math.nan for a in ALGORITHMS]
            print(f"  {i:>5} " + " ".join(f"{c:8.4f}" for c in cells))
        for a in ALGORITHMS:
            print(f"  {a} front: " + "; ".join(f"#{n} {b or 'sparse'} acc {acc:.4f} noise {ns:.0f}"
                                               for n, b, acc, ns in pair[a]["front"]))
        same = [i for i in pair["tpe"]["params"] if pair["tpe"]["params"].get(i) == pair["random"]["params"].get(i)]
        print(f"  trials with identical configs in both runs: {sorted(same)} (TPE's start-up trials are random)")
    summary = {}
    for a in ALGORITHMS:
        hv = [r["hypervolume"] for r in runs if r["algorithm"] == a]
        summary[a] = {"mean": statistics.fmean(hv), "min": min(hv), "max": max(hv), "n": len(hv)}
    wins = sum(1 for s in seeds
               if next(r for r in runs if r["seed"] == s and r["algorithm"] == "tpe")["hypervolume"]
               > next(r for r in runs if r["seed"] == s and r["algorithm"] == "random")["hypervolume"])
    total = time.perf_counter() - t0
    print()
    for a in ALGORITHMS:
        s = summary[a]
        print(f"{a:>6}: final hypervolume mean {s['mean']:.4f} (min {s['min']:.4f}, max {s['max']:.4f}) over {s['n']} seed(s)")
    print(f"TPE beats random on {wins}/{len(seeds)} seed(s); total wall {total:.0f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary, "tpe_wins": wins,
                                               "seeds": seeds, "trials": args.trials, "wall_s": total, "code": code},
                                              indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
