"""Which searcher, and which confirmation, hands over the best configs: the replay benchmark, on the truth.

Every variant runs the service's own search code (`sweeps.replay.simulate`: the same sampler
construction, study plan with its confirmation phase, and early-stopping rule as a real sweep)
against a surrogate fitted on the committed table of real MNIST trials, ``--seeds`` simulated
sweeps each, with the table spec's budget (48 searched trials, 4 concurrent workers) and the paper
presets' confirmation (top 4, 3 seeds) unless the variant says otherwise. Scored on the truth
(`sweeps.replay.truth`): the true hypervolume of the configs handed over after the confirmation,
at equal total epochs (replicates included), the claims `best` makes against dense and how often
they are true, and how often the chosen config truly beats dense. Confirmation set-ups are compared
at an equal total of 68 trials (48 + 2 baselines + (4 + 2) x 3 replicates).

    python -m benchmarks.bench_replay                       # 30 seeds, every variant
    python -m benchmarks.bench_replay --seeds 5 --variants random tpe-mv

Writes ``benchmarks/results/replay/bench-replay-<utc>.json`` (the summary, every run's figures,
the median curves, the surrogate's held-out fidelity and noise model, the calibration checks,
machine, load and commit) and prints the table that `docs/benchmarks/sweeps.md` records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent

from benchmarks.common import RANDOM_REFERENCE, REPLAY_TABLE, machine_record  # noqa: E402
from sweeps.replay.compare import Variant, summarize  # noqa: E402
from sweeps.replay.reference import write_reference  # noqa: E402
from sweeps.replay.table import load_table  # noqa: E402

ASHA_PARETO = {"rule": "pareto", "grace_period": 1, "reduction_factor": 3}
# Successive halving with rungs at epochs 1 and 3 of 4 trains about 1.8 epochs a trial: 110 trials
# can spend the 200 search epochs of random's 48 full trials and 2 baselines; every variant is
# read at random's total epochs (search and replicates), so the extra trials buy nothing.
ASHA_TRIALS = 110
CONFIRM = (4, 3)  # the paper presets' confirm: {top: 4, seeds: 3}
TOTAL_TRIALS = 48 + 2 + (CONFIRM[0] + 2) * CONFIRM[1]  # 68


def _confirm_variant(top: int, seeds: int) -> Variant:
    trials = TOTAL_TRIALS - 2 - (top + 2) * seeds
    return Variant(f"tpe-mv c{top}x{seeds}", "tpe-mv", trials=trials, confirm=(top, seeds))


VARIANTS = {
    "random": Variant("random", "random", confirm=CONFIRM),
    "tpe": Variant("tpe", "tpe", confirm=CONFIRM),
    "tpe-mv": Variant("tpe-mv", "tpe-mv", confirm=CONFIRM),
    "nsga2": Variant("nsga2", "nsga2", confirm=CONFIRM),
    "gp": Variant("gp", "gp", confirm=CONFIRM),
    "tpe-mv+asha-pareto": Variant("tpe-mv+asha-pareto", "tpe-mv", ASHA_PARETO, ASHA_TRIALS, confirm=CONFIRM),
    "random+asha-pareto": Variant("random+asha-pareto", "random", ASHA_PARETO, ASHA_TRIALS, confirm=CONFIRM),
    # Confirmation set-ups at the same 68 trials in all (the searched trials make up the rest).
    "tpe-mv c2x3": _confirm_variant(2, 3),
    "tpe-mv c4x2": _confirm_variant(4, 2),
    "tpe-mv c2x5": _confirm_variant(2, 5),
    "tpe-mv c6x2": _confirm_variant(6, 2),
    "tpe-mv c1x4": _confirm_variant(1, 4),
    "tpe-mv no confirm": Variant("tpe-mv no confirm", "tpe-mv", trials=TOTAL_TRIALS - 2),
    "random no confirm": Variant("random no confirm", "random", trials=TOTAL_TRIALS - 2),
}
SLOW = ("gp",)  # started first, so that both processes finish together

_STATE: dict = {}


def _init(table_path: str, mode: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from sweeps.replay.surrogate import fit_surrogate
    from sweeps.replay.truth import reference_point

    table = load_table(table_path)
    surrogate = fit_surrogate(table)
    _STATE.update(table=table, surrogate=surrogate, reference=reference_point(surrogate), mode=mode)


def _one(job: tuple[str, int]):
    from sweeps.replay.simulate import simulate

    name, seed = job
    t0 = time.perf_counter()
    result = simulate(VARIANTS[name].spec_for(_STATE["table"].spec), _STATE["surrogate"], seed, mode=_STATE["mode"],
                      reference=_STATE["reference"])
    return name, seed, result, time.perf_counter() - t0


def _fmt(x, digits: int = 5) -> str:
    return "beyond" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(REPLAY_TABLE))
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--mode", default="drawn", choices=["drawn", "recorded"],
                    help="model seeds' effects: drawn per sweep, or the table's recorded ones")
    ap.add_argument("--processes", type=int, default=2, help="simulations in parallel (results do not depend on it)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if "random" not in args.variants:
        args.variants.insert(0, "random")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from sweeps.replay.calibrate import design_check
    from sweeps.replay.surrogate import fit_surrogate, holdout
    from sweeps.replay.truth import reference_point

    table = load_table(args.table)
    machine = machine_record(HERE.parent, threads=1)
    fidelity = holdout(table)
    print(fidelity.line(), flush=True)
    surrogate = fit_surrogate(table)
    noise = surrogate.noise
    print(f"noise model (final epoch, noise score/max): seed effect sd {noise.seed_sd[1, -1]:.4f} (F test p "
          f"{noise.seed_p[1]:.2g}), a trial's own sd {noise.trial_sd[1, -1]:.4f}; accuracy {noise.seed_sd[0, -1]:.4f}, "
          f"{noise.trial_sd[0, -1]:.4f}; from {len(noise.configs)} configs x {len(noise.seeds)} seeds", flush=True)
    reference = reference_point(surrogate)
    print(f"reference point (true accuracy, true noise score/max): ({reference[0]:.4f}, {reference[1]:.4f})", flush=True)
    checks = design_check(table, reference)
    for c in checks:
        print(f"calibration, {c.name}: real {c.real:.5f}, simulated median {c.simulated_median:.5f} "
              f"[10-90 % {c.simulated_q10:.5f}, {c.simulated_q90:.5f}], real at percentile {100 * c.percentile_of_real:.0f}",
              flush=True)

    jobs = [(name, seed) for name in args.variants for seed in range(args.seeds)]
    jobs.sort(key=lambda j: (not j[0].startswith(SLOW), j))
    results: dict[str, dict[int, object]] = {name: {} for name in args.variants}
    seconds: dict[str, list[float]] = {name: [] for name in args.variants}
    t0 = time.perf_counter()
    with get_context("spawn").Pool(args.processes, initializer=_init, initargs=(args.table, args.mode)) as pool:
        for i, (name, seed, result, secs) in enumerate(pool.imap_unordered(_one, jobs), 1):
            results[name][seed] = result
            seconds[name].append(secs)
            if len(results[name]) == args.seeds:
                print(f"[{i}/{len(jobs)}] {name}: {args.seeds} sweeps, median {sorted(seconds[name])[len(seconds[name]) // 2]:.2f} s "
                      f"each ({time.perf_counter() - t0:.0f} s so far)", flush=True)
    wall = time.perf_counter() - t0
    ordered = {name: [results[name][s] for s in range(args.seeds)] for name in args.variants}
    summary = summarize(ordered, reference, noise_sd=float(noise.total_sd_at(surrogate.truth(None, "dense"))[1, -1]))

    print(f"\n{args.seeds} simulated sweeps per variant ({args.mode} seed effects); target = random's median true "
          f"final hypervolume {summary['target']:.5f}; equal-epoch budget {summary['epoch_budget']:.0f} epochs")
    print(f"{'variant':<20} {'true HV at budget, median [95% CI]':>36} {'trials to target [IQR] (reach)':>32} "
          f"{'epochs to it':>13} {'p':>8} {'beats dense':>12} {'says so':>8} {'claims true':>12} {'observed HV':>9}")
    for name, v in summary["variants"].items():
        b, t, e = v["true_hypervolume_at_epoch_budget"], v["trials_to_target"], v["epochs_to_target"]
        fmt = lambda q: "beyond" if q is None else f"{q:.0f}"  # noqa: E731
        p = v["mannwhitney_p_true_at_epoch_budget"]
        pw, cl = v["power"], v["claims_against_dense"]["all"]
        print(f"{name:<20} {_fmt(b['median'])} [{_fmt(b['median_low'])}, {_fmt(b['median_high'])}]"
              f" {fmt(t['median']):>9} [{fmt(t['q1'])}, {fmt(t['q3'])}] ({t['reached']}/{t['runs']}) {fmt(e['median']):>8}"
              f" {'' if p is None else f'{p:.2g}':>8} {pw['truly_beats']['rate']:>10.2f} {pw['says_better_on_noise']['rate']:>8.2f}"
              f" {cl['k']:>5}/{cl['n']:<5} {v['observed_final_hypervolume']['median']:.5f}")

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / "replay" / f"bench-replay-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine["load_after"] = list(os.getloadavg())
    table_path = Path(args.table).resolve()
    record = {
        "benchmark": "replay", "table": str(table_path.relative_to(HERE.parent))
        if table_path.is_relative_to(HERE.parent) else args.table,
        "machine": machine, "processes": args.processes, "wall_seconds": wall, "mode": args.mode,
        "seconds_per_sweep_median": {n: sorted(s)[len(s) // 2] for n, s in seconds.items()},
        "seeds": args.seeds, "budget": {"trials": table.spec.budget.trials, "max_concurrent": table.spec.budget.max_concurrent,
                                        "epochs": table.spec.epochs},
        "variants": {n: {"algorithm": VARIANTS[n].algorithm, "early_stopping": VARIANTS[n].early_stopping,
                         "trials": VARIANTS[n].trials or table.spec.budget.trials, "confirm": VARIANTS[n].confirm}
                     for n in args.variants},
        "fidelity": fidelity.to_dict(), "noise_model": noise.to_dict(), "calibration": [c.to_dict() for c in checks],
        "summary": summary,
    }
    out.write_text(json.dumps(record, indent=1))
    print(f"\nwrote {out}")
    if args.out is None and args.seeds >= 30 and args.mode == "drawn":  # the report's curve comes from a full run
        source = str(out.relative_to(HERE.parent))
        path = write_reference(table.spec, reference, summary["variants"]["random"]["observed_curve_by_trials_ended"],
                               args.seeds, source, RANDOM_REFERENCE)
        print(f"wrote {path} (random search's expected observed curve for sweep reports; the package ships a "
              f"copy: cp {path} sweeps/replay/random-reference.json to update it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
