"""Which searcher finds the accuracy/noise trade-off with the fewest trials: the replay benchmark.

Every variant runs the service's own search code (`sweeps.replay.simulate`: the same sampler
construction, study rules and early-stopping rule as a real sweep) against a surrogate fitted on
the committed table of real MNIST trials, ``--seeds`` simulated sweeps each, with the table spec's
budget (48 trials, 4 concurrent workers). Multi-fidelity variants (successive halving) are charged
for the epochs they train and get enough trials to spend the epochs random search spends; they are
compared at that equal epoch budget.

    python benchmarks/bench_replay.py                       # 30 seeds, every variant
    python benchmarks/bench_replay.py --seeds 5 --variants random tpe-mv

Writes ``benchmarks/results/replay/bench-replay-<utc>.json`` (the summary, every run's final
hypervolume, the median anytime curves, the surrogate's held-out fidelity, machine and load) and
prints the table that `docs/benchmarks.md` records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sweeps.replay.compare import Variant, reference_point, summarize  # noqa: E402
from sweeps.replay.reference import write_reference  # noqa: E402
from sweeps.replay.table import DEFAULT_TABLE, load_table  # noqa: E402

ASHA_PARETO = {"rule": "pareto", "grace_period": 1, "reduction_factor": 3}
ASHA_ACCURACY = {"rule": "accuracy", "grace_period": 1, "reduction_factor": 3}
# Successive halving with rungs at epochs 1 and 3 of 4 trains about 1.8 epochs a trial: 110 trials
# can spend the ~190 epochs of random search's 48 full trials.
ASHA_TRIALS = 110

VARIANTS = {
    "random": Variant("random", "random"),
    "tpe": Variant("tpe", "tpe"),
    "tpe-mv": Variant("tpe-mv", "tpe-mv"),
    "nsga2": Variant("nsga2", "nsga2"),
    "gp": Variant("gp", "gp"),
    "tpe-mv+asha-pareto": Variant("tpe-mv+asha-pareto", "tpe-mv", ASHA_PARETO, ASHA_TRIALS),
    "tpe-mv+asha-accuracy": Variant("tpe-mv+asha-accuracy", "tpe-mv", ASHA_ACCURACY, ASHA_TRIALS),
    "gp+asha-pareto": Variant("gp+asha-pareto", "gp", ASHA_PARETO, ASHA_TRIALS),
    "random+asha-pareto": Variant("random+asha-pareto", "random", ASHA_PARETO, ASHA_TRIALS),
}
# Fewer random start-up trials than the default (10 of 48).
for _n in (4, 6):
    for _alg in ("tpe", "tpe-mv", "gp"):
        VARIANTS[f"{_alg}-s{_n}"] = Variant(f"{_alg}-s{_n}", _alg, startup_trials=_n)
    VARIANTS[f"tpe-mv-s{_n}+asha-pareto"] = Variant(f"tpe-mv-s{_n}+asha-pareto", "tpe-mv", ASHA_PARETO, ASHA_TRIALS, _n)

_STATE: dict = {}


def _init(table_path: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from sweeps.replay.surrogate import fit_surrogate

    table = load_table(table_path)
    _STATE.update(table=table, surrogate=fit_surrogate(table))


def _one(job: tuple[str, int]):
    from sweeps.replay.simulate import simulate

    name, seed = job
    t0 = time.perf_counter()
    result = simulate(VARIANTS[name].spec_for(_STATE["table"].spec), _STATE["surrogate"], seed)
    return name, seed, result, time.perf_counter() - t0


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "commit": commit,
            "load_before": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--processes", type=int, default=2, help="simulations in parallel (results do not depend on it)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if "random" not in args.variants:
        args.variants.insert(0, "random")

    from sweeps.replay.surrogate import holdout

    table = load_table(args.table)
    machine = _machine()
    fidelity = holdout(table)
    print(fidelity.line(), flush=True)
    reference = reference_point(table)
    print(f"reference point (accuracy, noise score/max): ({reference[0]:.4f}, {reference[1]:.4f})", flush=True)

    jobs = [(name, seed) for name in args.variants for seed in range(args.seeds)]
    jobs.sort(key=lambda j: (not j[0].startswith("gp"), j))  # the slow sampler first, so both processes finish together
    results: dict[str, dict[int, object]] = {name: {} for name in args.variants}
    seconds: dict[str, list[float]] = {name: [] for name in args.variants}
    t0 = time.perf_counter()
    with get_context("spawn").Pool(args.processes, initializer=_init, initargs=(args.table,)) as pool:
        for i, (name, seed, result, secs) in enumerate(pool.imap_unordered(_one, jobs), 1):
            results[name][seed] = result
            seconds[name].append(secs)
            if len(results[name]) == args.seeds:
                print(f"[{i}/{len(jobs)}] {name}: {args.seeds} sweeps, median {sorted(seconds[name])[len(seconds[name]) // 2]:.2f} s "
                      f"each ({time.perf_counter() - t0:.0f} s so far)", flush=True)
    wall = time.perf_counter() - t0
    ordered = {name: [results[name][s] for s in range(args.seeds)] for name in args.variants}
    summary = summarize(ordered, reference)

    print(f"\n{args.seeds} simulated sweeps per variant; target = random's median final hypervolume "
          f"{summary['target']:.5f}; equal-epoch budget {summary['epoch_budget']:.0f} epochs")
    print(f"{'variant':<22} {'trials':>7} {'final HV median [IQR]':>30} {'trials to target':>20} "
          f"{'epochs to target':>18} {'HV at epoch budget':>28} {'p (final)':>9}")
    for name, v in summary["variants"].items():
        f, t, e, b = v["final_hypervolume"], v["trials_to_target"], v["epochs_to_target"], v["hypervolume_at_epoch_budget"]
        fmt = lambda q: "never" if q is None else f"{q:.0f}"  # noqa: E731
        p = v["mannwhitney_p_greater_than_random"]
        print(f"{name:<22} {fmt(v['trials_total']['median']):>7} {f['median']:.5f} [{f['q1']:.5f}, {f['q3']:.5f}]"
              f" {fmt(t['median']):>9} ({t['reached']}/{t['runs']} reach) {fmt(e['median']):>9} "
              f"[{fmt(e['q1'])}, {fmt(e['q3'])}] {b['median']:.5f} [{b['q1']:.5f}, {b['q3']:.5f}]"
              f" {'' if p is None else f'{p:.3g}':>9}")

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / "replay" / f"bench-replay-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine["load_after"] = os.getloadavg()
    record = {
        "benchmark": "replay", "table": str(Path(args.table).resolve().relative_to(HERE.parent))
        if Path(args.table).resolve().is_relative_to(HERE.parent) else args.table,
        "machine": machine, "processes": args.processes, "wall_seconds": wall,
        "seconds_per_sweep_median": {n: sorted(s)[len(s) // 2] for n, s in seconds.items()},
        "seeds": args.seeds, "budget": {"trials": table.spec.budget.trials, "max_concurrent": table.spec.budget.max_concurrent,
                                        "epochs": table.spec.epochs},
        "variants": {n: {"algorithm": VARIANTS[n].algorithm, "early_stopping": VARIANTS[n].early_stopping,
                         "trials": VARIANTS[n].trials or table.spec.budget.trials} for n in args.variants},
        "fidelity": fidelity.to_dict(), "summary": summary,
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"\nwrote {out}")
    if args.out is None and args.seeds >= 30:  # the report's reference curve comes from a full run
        source = str(out.relative_to(HERE.parent))
        path = write_reference(table.spec, reference, summary["variants"]["random"]["curve_by_trials"], args.seeds, source)
        print(f"wrote {path} (random search's expected curve for sweep reports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
