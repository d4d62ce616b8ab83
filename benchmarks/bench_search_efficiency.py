"""Real sweeps: does the simulator's ordering hold? The default searcher against random search.

Each run is a real sweep (`sweeps.run.service.run_sweep`: local Ray, MLflow and Optuna on SQLite,
real MNIST training) of the replay table's spec (`benchmarks/specs/replay-mnist.yaml`: mnist-quick's
space, 4 epochs on 2,500 training images) with ``--trials`` searched trials plus the two baselines,
``--concurrent`` at a time, once per searcher and seed. Its hypervolume is measured exactly as the
replay benchmark measures it (`sweeps.results.read.hypervolume_curve`, the table's reference point), and
the simulator's prediction for the same budget (``--sim-seeds`` simulated sweeps each) is printed
beside it.

    SPARSE_SWEEPS_DATA=/path/to/data python benchmarks/bench_search_efficiency.py \\
        [--trials 20] [--seeds 0,1,2] [--searchers tpe-mv,random] [--root DIR]

Writes ``benchmarks/results/replay/real-sweeps-<utc>.json``. Runs already finished in ``--root``
are read back, not rerun (resumable).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
SPEC = HERE / "specs" / "replay-mnist.yaml"


def spec_for(base: Any, algorithm: str, seed: int, trials: int, concurrent: int, root: str) -> Any:
    return dataclasses.replace(
        base, name=f"real-{algorithm}-s{seed}-t{trials}",
        budget=dataclasses.replace(base.budget, trials=trials, max_concurrent=concurrent),
        searcher=dataclasses.replace(base.searcher, algorithm=algorithm, seed=seed),
        stores=dataclasses.replace(base.stores, root=root),
    )


def finished_trials(spec: Any) -> list[Any] | None:
    """The trials of a sweep that already ran to its budget in this root, else None."""
    from sweeps.run.service import spec_path
    from sweeps.search.study import load_study

    if not spec_path(spec.stores.root, spec.name).exists():
        return None
    study = load_study(spec.name, spec.stores.resolved().optuna_storage)
    if study is None:
        return None
    trials = study.get_trials(deepcopy=False)
    ended = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    return trials if len(ended) >= spec.num_samples else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20, help="searched trials per sweep (plus the 2 baselines)")
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--searchers", default=None, help="comma-separated; default: the default searcher and random")
    ap.add_argument("--sim-seeds", type=int, default=30)
    ap.add_argument("--root", default=str(HERE / "out" / "real-sweeps"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from sweeps.replay.compare import Variant, run_variant, summarize
    from sweeps.replay.reference import random_reference
    from sweeps.replay.surrogate import fit_surrogate
    from sweeps.replay.table import load_table
    from sweeps.results.read import hypervolume_curve
    from sweeps.search.samplers import DEFAULT_SAMPLER
    from sweeps.spec import load_spec

    base = load_spec(SPEC)
    table = load_table()
    from sweeps.replay.compare import reference_point

    ref = reference_point(table)
    searchers = args.searchers.split(",") if args.searchers else [DEFAULT_SAMPLER, "random"]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"reference point {ref}; {args.trials} trials + 2 baselines, {args.concurrent} at a time; "
          f"searchers {searchers}; seeds {seeds}; stores {args.root}", flush=True)

    runs = []
    for seed in seeds:
        for algorithm in searchers:
            spec = spec_for(base, algorithm, seed, args.trials, args.concurrent, args.root)
            trials = finished_trials(spec)
            t0 = time.perf_counter()
            if trials is None:
                from sweeps.run.service import resume_sweep, run_sweep, spec_path

                started = spec_path(args.root, spec.name).exists()  # killed part-way: resume it
                trials = (resume_sweep(spec.name, root=args.root) if started else run_sweep(spec)).trials
            x, hv = hypervolume_curve(trials, ref)
            states = [t.state.name for t in trials]
            runs.append({"searcher": algorithm, "seed": seed, "name": spec.name, "wall_s": time.perf_counter() - t0,
                         "hypervolume": hv[-1] if hv else 0.0, "curve": hv,
                         "complete": states.count("COMPLETE"), "failed": states.count("FAIL"),
                         "params": [t.params for t in sorted(trials, key=lambda t: t.number)]})
            print(f"{spec.name}: {runs[-1]['complete']} complete, {runs[-1]['failed']} failed, "
                  f"hypervolume {runs[-1]['hypervolume']:.5f} ({runs[-1]['wall_s']:.0f} s)", flush=True)

    # The simulator's prediction for the same budget and concurrency.
    sim_spec = spec_for(base, "random", 0, args.trials, args.concurrent, args.root)
    surrogate = fit_surrogate(table)
    sims = {a: run_variant(sim_spec, Variant(a, a), surrogate, list(range(args.sim_seeds))) for a in searchers}
    sim = summarize(sims, ref, baseline_variant=searchers[-1])

    summary = {}
    print(f"\n{'searcher':<10} {'real mean':>10} {'sd':>8} {'min':>8} {'max':>8} {'n':>3}   simulated median [IQR]")
    for a in searchers:
        hv = [r["hypervolume"] for r in runs if r["searcher"] == a]
        s = sim["variants"][a]["final_hypervolume"]
        summary[a] = {"mean": statistics.fmean(hv), "sd": statistics.stdev(hv) if len(hv) > 1 else 0.0,
                      "min": min(hv), "max": max(hv), "n": len(hv), "per_seed": hv, "simulated": s}
        print(f"{a:<10} {summary[a]['mean']:10.5f} {summary[a]['sd']:8.5f} {summary[a]['min']:8.5f} "
              f"{summary[a]['max']:8.5f} {len(hv):3d}   {s['median']:.5f} [{s['q1']:.5f}, {s['q3']:.5f}]")
    expected = random_reference(base)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / "replay" / f"real-sweeps-{stamp}.json"
    out.write_text(json.dumps({
        "benchmark": "real sweeps vs the simulator", "spec": str(SPEC.relative_to(HERE.parent)),
        "trials": args.trials, "concurrent": args.concurrent, "seeds": seeds, "reference_point": list(ref),
        "machine": {"cores": os.cpu_count(), "load_after": os.getloadavg()}, "runs": runs, "summary": summary,
        "simulated": {a: sim["variants"][a]["final_hypervolume"] for a in searchers},
        "random_reference_available": expected is not None,
    }, indent=1, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
