"""Real sweeps against the simulator: is the simulator calibrated, and does a searcher beat random?

Each run is a real sweep (`sweeps.run.service.run_sweep`: local Ray, MLflow and Optuna on SQLite,
real MNIST training) of ``--spec`` (default the `mnist-quick` preset, whose replay table is the
committed one; the first table's spec is `benchmarks/specs/replay-mnist.yaml`, with ``--table``)
with ``--trials`` searched trials plus the two baselines, ``--concurrent`` at a time, then its
confirmation phase (``--confirm-top`` configs and both baselines again with ``--confirm-seeds``
more model seeds; 0 for none), once per searcher and seed; each setting defaults to the spec's.

For every run it measures what a real sweep can measure, as the replay benchmark measures it (the
same truth-model reference point, noise score over its maximum):

* the observed hypervolume of the search (`sweeps.results.read.hypervolume_curve`: replicates left
  out), and
* the confirmed hypervolume: the hypervolume of the means of the configs on the service's front
  (`config_front`, on the confirmed configs once there are replicates);

and places each against the simulator's 10-90 % band for the same budget, concurrency and
confirmation (``--sim-seeds`` simulated sweeps per searcher, with the table's *recorded* model-seed
effects: the seeds a real sweep trains). The per-trial values of the real runs (final validation
accuracy and noise score / max of every searched trial) are compared with the simulated ones by a
two-sample Kolmogorov-Smirnov test per objective and searcher.

    SPARSE_SWEEPS_DATA=/path/to/data python -m benchmarks.bench_search_efficiency \\
        [--spec mnist-quick] [--trials 8] [--seeds 0,1,2] [--searchers tpe-mv,random] [--confirm-top 2 --confirm-seeds 2] [--root DIR]

Writes ``benchmarks/results/replay/real-sweeps-<utc>.json``. Runs already finished in ``--root``
are read back, not rerun, and a run killed part-way is resumed (resumable across sessions);
``--report-only`` reads whatever has finished and runs nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = "mnist-quick"  # the preset the committed replay table recorded


def spec_for(base: Any, algorithm: str, seed: int, trials: int, concurrent: int, root: str,
             confirm: tuple[int, int] | None) -> Any:
    from sweeps.spec import Confirm

    tag = "" if confirm is None else f"-c{confirm[0]}x{confirm[1]}"
    return dataclasses.replace(
        base, name=f"real-{algorithm}-s{seed}-t{trials}{tag}",
        budget=dataclasses.replace(base.budget, trials=trials, max_concurrent=concurrent),
        searcher=dataclasses.replace(base.searcher, algorithm=algorithm, seed=seed),
        stores=dataclasses.replace(base.stores, root=root),
        confirm=None if confirm is None else Confirm(*confirm),
    )


def finished_trials(spec: Any) -> list[Any] | None:
    """The trials of a sweep whose whole plan (search and replicates) ran in this root, else None."""
    from sweeps.run.service import spec_path
    from sweeps.search.study import SweepStudy, is_orphaned, is_replicate, is_searched, load_study

    if not spec_path(spec.stores.root, spec.name).exists():
        return None
    study = load_study(spec.name, spec.stores.resolved().optuna_storage)
    if study is None:
        return None
    trials = study.get_trials(deepcopy=False)
    ended = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and not is_orphaned(t)]
    first = [t for t in ended if not is_replicate(t)]
    if sum(is_searched(t) for t in first) < spec.budget.trials or len(first) < spec.num_samples:
        return None
    if any(t.state.name in ("RUNNING", "WAITING") for t in trials):
        return None
    if SweepStudy(spec.study_plan(), study).replicates_left(trials):
        return None
    return trials


def confirmed_hypervolume(trials: list[Any], reference: tuple[float, float]) -> tuple[float, list[list[float]]]:
    """Hypervolume of the means of the service's front configs, noise score over its maximum."""
    from sweeps.results.read import config_front, config_summaries
    from sweeps.replay.truth import true_hypervolume

    noise_max = next((float(t.user_attrs["noise_max"]) for t in trials if t.user_attrs.get("noise_max")), 0.0)
    front = config_front(config_summaries(trials))
    means = [[c.values[0], c.values[1] / noise_max if noise_max > 0 else 0.0] for c in front]
    return true_hypervolume([tuple(m) for m in means], reference), means


def per_trial_values(trials: list[Any]) -> list[list[float]]:
    """Final (validation accuracy, noise score / max) of the COMPLETE searched trials."""
    from sweeps.search.study import is_searched

    out = []
    for t in trials:
        if is_searched(t) and t.state.name == "COMPLETE" and t.values:
            m = float(t.user_attrs.get("noise_max") or 0)
            out.append([float(t.values[0]), float(t.values[1]) / m if m > 0 else 0.0])
    return out


def band(values: list[float]) -> dict[str, float]:
    import numpy as np

    q10, q50, q90 = np.percentile(np.asarray(values, dtype=float), [10, 50, 90])
    return {"q10": float(q10), "median": float(q50), "q90": float(q90)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=SPEC, help="spec file or preset (default mnist-quick; its space must lie within "
                                                 "the table's)")
    ap.add_argument("--table", default=None, help="replay table (default: the recorded one, benchmarks.common.REPLAY_TABLE)")
    ap.add_argument("--trials", type=int, default=None, help="searched trials per sweep (default: the spec's)")
    ap.add_argument("--concurrent", type=int, default=None, help="default: the spec's")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--searchers", default=None, help="comma-separated; default: the spec's searcher and random")
    ap.add_argument("--confirm-top", type=int, default=None, help="default: the spec's confirm, else the paper presets' 4")
    ap.add_argument("--confirm-seeds", type=int, default=None, help="0: no confirmation phase (default: the spec's, else 3)")
    ap.add_argument("--sim-seeds", type=int, default=100)
    ap.add_argument("--root", default=str(HERE / "out" / "real-sweeps"))
    ap.add_argument("--report-only", action="store_true", help="read the finished runs, run nothing")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np
    from scipy.stats import ks_2samp

    from benchmarks.common import REPLAY_TABLE, bench_spec, machine_record
    from sweeps.replay.compare import Variant, run_variant
    from sweeps.replay.surrogate import fit_surrogate
    from sweeps.replay.table import load_table
    from sweeps.replay.truth import reference_point
    from sweeps.results.read import hypervolume_curve
    from sweeps.spec import load_spec

    machine = machine_record(HERE.parent)
    base, (top, seeds) = bench_spec(load_spec(args.spec), args.trials, args.concurrent)
    table = load_table(args.table or REPLAY_TABLE)
    table.check_covers(base)
    args.trials, args.concurrent = base.budget.trials, base.budget.max_concurrent
    args.confirm_top = top if args.confirm_top is None else args.confirm_top
    args.confirm_seeds = seeds if args.confirm_seeds is None else args.confirm_seeds
    surrogate = fit_surrogate(table)
    ref = reference_point(surrogate)
    confirm = None if args.confirm_seeds == 0 else (args.confirm_top, args.confirm_seeds)
    searchers = args.searchers.split(",") if args.searchers else list(dict.fromkeys([base.searcher.algorithm, "random"]))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"reference point {ref}; {args.trials} trials + 2 baselines, {args.concurrent} at a time, confirm {confirm}; "
          f"searchers {searchers}; seeds {seeds}; stores {args.root}", flush=True)

    runs = []
    for seed in seeds:
        for algorithm in searchers:
            spec = spec_for(base, algorithm, seed, args.trials, args.concurrent, args.root, confirm)
            trials = finished_trials(spec)
            t0 = time.perf_counter()
            if trials is None and args.report_only:
                print(f"{spec.name}: not finished, left out", flush=True)
                continue
            if trials is None:
                from sweeps.run.service import resume_sweep, run_sweep, spec_path

                started = spec_path(args.root, spec.name).exists()  # killed part-way: resume it
                (resume_sweep(spec.name, root=args.root) if started else run_sweep(spec))
                trials = finished_trials(spec)
                if trials is None:
                    print(f"{spec.name}: did not finish its plan; rerun to resume it", flush=True)
                    continue
            _, hv = hypervolume_curve(trials, ref)
            confirmed, means = confirmed_hypervolume(trials, ref)
            states = [t.state.name for t in trials]
            runs.append({"searcher": algorithm, "seed": seed, "name": spec.name, "wall_s": time.perf_counter() - t0,
                         "observed_hypervolume": hv[-1] if hv else 0.0, "confirmed_hypervolume": confirmed,
                         "front_means": means, "curve": hv, "values": per_trial_values(trials),
                         "complete": states.count("COMPLETE"), "failed": states.count("FAIL"),
                         "params": [t.params for t in sorted(trials, key=lambda t: t.number)]})
            print(f"{spec.name}: {runs[-1]['complete']} complete, {runs[-1]['failed']} failed, observed hypervolume "
                  f"{runs[-1]['observed_hypervolume']:.5f}, confirmed {confirmed:.5f}", flush=True)

    # The simulator's prediction for the same budget, concurrency and confirmation, with the
    # model-seed effects a real sweep gets (the table's recorded seeds).
    sim_spec = spec_for(base, "random", 0, args.trials, args.concurrent, args.root, confirm)
    sims = {a: run_variant(sim_spec, Variant(a, a, confirm=confirm), surrogate, list(range(args.sim_seeds)),
                           mode="recorded", reference=ref) for a in searchers}
    summary: dict[str, Any] = {}
    print(f"\n{'searcher':<8} {'seed':>4} {'observed HV':>11} {'sim 10-90 %':>20} {'in':>3}   {'confirmed HV':>12} "
          f"{'sim 10-90 %':>20} {'in':>3}")
    for a in searchers:
        sim_obs = [float(r.anytime()[0][-1]) for r in sims[a]]
        sim_conf = [r.handover.confirmed_hypervolume for r in sims[a]]
        sim_values = np.array([t.objectives for r in sims[a] for t in r.trials if t.searched and t.state == "COMPLETE"])
        b_obs, b_conf = band(sim_obs), band(sim_conf)
        mine = [r for r in runs if r["searcher"] == a]
        for r in mine:
            r["observed_in_band"] = b_obs["q10"] <= r["observed_hypervolume"] <= b_obs["q90"]
            r["confirmed_in_band"] = b_conf["q10"] <= r["confirmed_hypervolume"] <= b_conf["q90"]
            r["observed_percentile"] = float(np.mean(np.asarray(sim_obs) < r["observed_hypervolume"]))
            r["confirmed_percentile"] = float(np.mean(np.asarray(sim_conf) < r["confirmed_hypervolume"]))
            print(f"{a:<8} {r['seed']:>4} {r['observed_hypervolume']:11.5f} [{b_obs['q10']:.5f}, {b_obs['q90']:.5f}] "
                  f"{'yes' if r['observed_in_band'] else 'no':>3}   {r['confirmed_hypervolume']:12.5f} "
                  f"[{b_conf['q10']:.5f}, {b_conf['q90']:.5f}] {'yes' if r['confirmed_in_band'] else 'no':>3}")
        real_values = np.array([v for r in mine for v in r["values"]]).reshape(-1, 2)
        tests = {}
        if len(real_values):
            for i, key in enumerate(("val_accuracy", "val_noise_score_over_max")):
                ks = ks_2samp(real_values[:, i], sim_values[:, i])
                tests[key] = {"ks_statistic": float(ks.statistic), "p_value": float(ks.pvalue),
                              "real_median": float(np.median(real_values[:, i])),
                              "simulated_median": float(np.median(sim_values[:, i])),
                              "n_real": int(len(real_values)), "n_simulated": int(len(sim_values))}
        conf = [r["confirmed_hypervolume"] for r in mine]
        summary[a] = {"runs": len(mine), "simulated_observed": b_obs, "simulated_confirmed": b_conf,
                      "observed_in_band": sum(r["observed_in_band"] for r in mine),
                      "confirmed_in_band": sum(r["confirmed_in_band"] for r in mine),
                      "confirmed_mean": statistics.fmean(conf) if conf else None,
                      "per_trial_two_sample": tests}
    both = [s for s in seeds if all(any(r["seed"] == s and r["searcher"] == a for r in runs) for a in searchers)]
    if len(searchers) == 2 and both:
        d, o = searchers
        wins = sum(next(r for r in runs if r["seed"] == s and r["searcher"] == d)["confirmed_hypervolume"]
                   >= next(r for r in runs if r["seed"] == s and r["searcher"] == o)["confirmed_hypervolume"] for s in both)
        summary["default_confirmed_at_least_other"] = {"seeds": len(both), "wins": wins}
        print(f"\n{d}'s confirmed hypervolume >= {o}'s in {wins} of {len(both)} seeds")
    total = len(runs)
    inside = sum(r.get("confirmed_in_band", False) for r in runs)
    print(f"real runs inside the simulated 10-90 % band: confirmed {inside}/{total}, observed "
          f"{sum(r.get('observed_in_band', False) for r in runs)}/{total}")
    for a in searchers:
        for key, t in summary[a]["per_trial_two_sample"].items():
            print(f"{a} per-trial {key}: real median {t['real_median']:.4f} (n={t['n_real']}) vs simulated "
                  f"{t['simulated_median']:.4f} (n={t['n_simulated']}), KS D={t['ks_statistic']:.3f}, p={t['p_value']:.2g}")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / "replay" / f"real-sweeps-{stamp}.json"
    machine["load_after"] = list(os.getloadavg())
    out.write_text(json.dumps({
        "benchmark": "real sweeps vs the simulator", "spec": str(args.spec), "table": table.path,
        "trials": args.trials, "concurrent": args.concurrent, "confirm": confirm, "seeds": seeds,
        "sim_seeds": args.sim_seeds, "sim_mode": "recorded", "reference_point": list(ref), "machine": machine,
        "runs": runs, "summary": summary,
    }, indent=1, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else str(v)))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
