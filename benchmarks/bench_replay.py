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

from benchmarks.common import RANDOM_REFERENCE, REPLAY_TABLE, bench_spec, machine_record  # noqa: E402
from sweeps.replay.compare import Variant, summarize  # noqa: E402
from sweeps.replay.reference import write_reference  # noqa: E402
from sweeps.replay.table import load_table  # noqa: E402

ASHA_PARETO = {"rule": "pareto", "grace_period": 1, "reduction_factor": 3}
SEARCHERS = ("random", "qmc", "tpe", "tpe-mv", "nsga2", "gp", "qnehvi")
SLOW = ("qnehvi", "gp")  # started first, so that the processes finish together
SEEDS_OF = {"qnehvi": 10}  # about 17 s of driver CPU per proposal: fewer sweeps (--seeds-of)


def make_variants(trials: int, confirm: tuple[int, int]) -> dict[str, Variant]:
    """Every searcher with ``confirm``; successive halving; and confirmation set-ups at the same
    total trials as the searchers' (``trials`` searched + 2 baselines + (top + 2) x seeds), the
    searched trials making up the rest."""
    total = trials + 2 + (confirm[0] + 2) * confirm[1]
    # Successive halving with rungs at epochs 1 and 3 of 4 trains about 1.8 epochs a trial: 110
    # trials for 48 can spend random's search epochs; every variant is read at random's total
    # epochs (search and replicates), so the extra trials buy nothing.
    asha_trials = round(trials * 110 / 48)
    out = {a: Variant(a, a, confirm=confirm) for a in SEARCHERS}
    out["tpe-mv+asha-pareto"] = Variant("tpe-mv+asha-pareto", "tpe-mv", ASHA_PARETO, asha_trials, confirm=confirm)
    out["random+asha-pareto"] = Variant("random+asha-pareto", "random", ASHA_PARETO, asha_trials, confirm=confirm)
    for top, seeds in ((2, 3), (4, 2), (2, 5), (6, 2), (1, 4)):
        searched = total - 2 - (top + 2) * seeds
        if searched >= top + 2 and (top, seeds) != confirm:
            out[f"tpe-mv c{top}x{seeds}"] = Variant(f"tpe-mv c{top}x{seeds}", "tpe-mv", trials=searched, confirm=(top, seeds))
    out["tpe-mv no confirm"] = Variant("tpe-mv no confirm", "tpe-mv", trials=total - 2)
    out["random no confirm"] = Variant("random no confirm", "random", trials=total - 2)
    return out


_STATE: dict = {}


def _init(table_path: str, mode: str, trials: int | None, concurrent: int | None, confirm) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from sweeps.replay.surrogate import fit_surrogate
    from sweeps.replay.truth import reference_point

    table = load_table(table_path)
    surrogate = fit_surrogate(table)
    spec, confirm = bench_spec(table.spec, trials, concurrent, confirm)
    _STATE.update(spec=spec, variants=make_variants(spec.budget.trials, confirm), surrogate=surrogate,
                  reference=reference_point(surrogate), mode=mode)


def _one(job: tuple[str, int]):
    from sweeps.replay.simulate import simulate

    name, seed = job
    t0 = time.perf_counter()
    result = simulate(_STATE["variants"][name].spec_for(_STATE["spec"]), _STATE["surrogate"], seed, mode=_STATE["mode"],
                      reference=_STATE["reference"])
    return name, seed, result, time.perf_counter() - t0


def _fmt(x, digits: int = 5) -> str:
    return "beyond" if x is None else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=str(REPLAY_TABLE))
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--seeds-of", nargs="*", default=[f"{k}={v}" for k, v in SEEDS_OF.items()], metavar="VARIANT=N",
                    help="fewer sweeps for slow variants (default: qnehvi=10)")
    ap.add_argument("--variants", nargs="+", default=None,
                    help="default: every searcher; also tpe-mv/random+asha-pareto, 'tpe-mv cTxS' confirmation set-ups, "
                         "'tpe-mv no confirm', 'random no confirm'")
    ap.add_argument("--trials", type=int, default=None, help="searched trials per sweep (default: the table spec's)")
    ap.add_argument("--concurrent", type=int, default=None, help="trials at a time (default: the table spec's)")
    ap.add_argument("--confirm", nargs=2, type=int, default=None, metavar=("TOP", "SEEDS"),
                    help="confirmation (default: the table spec's, else the paper presets' 4 x 3)")
    ap.add_argument("--mode", default="drawn", choices=["drawn", "recorded"],
                    help="model seeds' effects: drawn per sweep, or the table's recorded ones")
    ap.add_argument("--processes", type=int, default=2, help="simulations in parallel (results do not depend on it)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    table = load_table(args.table)
    spec, confirm = bench_spec(table.spec, args.trials, args.concurrent, args.confirm)
    variants = make_variants(spec.budget.trials, confirm)
    args.variants = args.variants or list(SEARCHERS)
    unknown = [v for v in args.variants if v not in variants]
    if unknown:
        ap.error(f"--variants: {', '.join(unknown)} unknown here; choose from {', '.join(variants)}")
    if "random" not in args.variants:
        args.variants.insert(0, "random")
    count = {v: args.seeds for v in args.variants}
    for item in args.seeds_of:
        name, _, n = item.partition("=")
        if name in count:
            count[name] = min(args.seeds, int(n))
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from sweeps.replay.calibrate import config_coverage, design_check
    from sweeps.replay.surrogate import fit_surrogate, holdout
    from sweeps.replay.truth import reference_point

    machine = machine_record(HERE.parent, threads=1)
    fidelity = holdout(table)
    print(fidelity.line(), flush=True)
    surrogate = fit_surrogate(table)
    noise = surrogate.noise
    print(f"noise model (final epoch, noise score/max): seed effect sd {noise.seed_sd[1, -1]:.4f} (F test p "
          f"{noise.seed_p[1]:.2g}), a trial's own sd {noise.trial_sd[1, -1]:.4f}; accuracy {noise.seed_sd[0, -1]:.4f}, "
          f"{noise.trial_sd[0, -1]:.4f}; from {len(noise.configs)} configs x {len(noise.seeds)} seeds; baselines' own sd "
          f"(noise score/max): {', '.join(f'{k} {v[1, -1]:.4f}' for k, v in sorted(noise.baseline_sd.items())) or 'none'}",
          flush=True)
    reference = reference_point(surrogate)
    print(f"reference point (true accuracy, true noise score/max): ({reference[0]:.4f}, {reference[1]:.4f})", flush=True)
    checks = design_check(table, reference, subset=spec.budget.trials)
    for c in checks:
        print(f"calibration, {c.name}: real {c.real:.5f}, simulated median {c.simulated_median:.5f} "
              f"[10-90 % {c.simulated_q10:.5f}, {c.simulated_q90:.5f}], real at percentile {100 * c.percentile_of_real:.0f}",
              flush=True)
    coverage = config_coverage(table)
    for c in coverage:
        print(f"calibration, held-out design configs inside their own simulated 10-90 % band, {c.objective}: "
              f"{c.inside}/{c.configs} (95 % CI {100 * c.low:.0f}-{100 * c.high:.0f} %; 80 % if calibrated), mean "
              f"percentile {c.mean_percentile:.0f}", flush=True)

    jobs = [(name, seed) for name in args.variants for seed in range(count[name])]
    jobs.sort(key=lambda j: (j[0] not in SLOW, j))
    results: dict[str, dict[int, object]] = {name: {} for name in args.variants}
    seconds: dict[str, list[float]] = {name: [] for name in args.variants}
    t0 = time.perf_counter()
    with get_context("spawn").Pool(args.processes, initializer=_init, initargs=(args.table, args.mode, args.trials, args.concurrent,
                                                                               args.confirm)) as pool:
        for i, (name, seed, result, secs) in enumerate(pool.imap_unordered(_one, jobs), 1):
            results[name][seed] = result
            seconds[name].append(secs)
            if len(results[name]) == count[name]:
                print(f"[{i}/{len(jobs)}] {name}: {count[name]} sweeps, median {sorted(seconds[name])[len(seconds[name]) // 2]:.2f} s "
                      f"each ({time.perf_counter() - t0:.0f} s so far)", flush=True)
    wall = time.perf_counter() - t0
    ordered = {name: [results[name][s] for s in range(count[name])] for name in args.variants}
    summary = summarize(ordered, reference, noise_sd=float(noise.total_sd_at(surrogate.truth(None, "dense"), "dense")[1, -1]))

    print(f"\n{spec.name}: {spec.budget.trials} searched trials + {len(spec.baselines)} baselines, "
          f"{spec.budget.max_concurrent} at a time, confirm top {confirm[0]} x {confirm[1]} seeds; {args.seeds} simulated "
          f"sweeps per variant (fewer: {', '.join(f'{k} {v}' for k, v in count.items() if v < args.seeds) or 'none'}; "
          f"{args.mode} seed effects); target = random's median true "
          f"final hypervolume {summary['target']:.5f}; equal-epoch budget {summary['epoch_budget']:.0f} epochs")
    print(f"{'variant':<20} {'true HV at budget, median [95% CI]':>36} {'trials to target [IQR] (reach)':>32} "
          f"{'epochs to it':>13} {'p':>8} {'p trials':>8} {'beats dense':>12} {'says so':>8} {'claims true':>12} {'observed HV':>9}")
    for name, v in summary["variants"].items():
        b, t, e = v["true_hypervolume_at_epoch_budget"], v["trials_to_target"], v["epochs_to_target"]
        fmt = lambda q: "beyond" if q is None else f"{q:.0f}"  # noqa: E731
        p, pt = v["mannwhitney_p_true_at_epoch_budget"], v["mannwhitney_p_fewer_trials_to_target"]
        pw, cl = v["power"], v["claims_against_dense"]["all"]
        print(f"{name:<20} {_fmt(b['median'])} [{_fmt(b['median_low'])}, {_fmt(b['median_high'])}]"
              f" {fmt(t['median']):>9} [{fmt(t['q1'])}, {fmt(t['q3'])}] ({t['reached']}/{t['runs']}) {fmt(e['median']):>8}"
              f" {'' if p is None else f'{p:.2g}':>8} {'' if pt is None else f'{pt:.2g}':>8} {pw['truly_beats']['rate']:>10.2f} {pw['says_better_on_noise']['rate']:>8.2f}"
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
        "seeds": args.seeds, "seeds_per_variant": count,
        "budget": {"trials": spec.budget.trials, "max_concurrent": spec.budget.max_concurrent, "epochs": spec.epochs},
        "confirm": list(confirm),
        "variants": {n: {"algorithm": variants[n].algorithm, "early_stopping": variants[n].early_stopping,
                         "trials": variants[n].trials or spec.budget.trials, "confirm": variants[n].confirm}
                     for n in args.variants},
        "fidelity": fidelity.to_dict(), "noise_model": noise.to_dict(), "calibration": [c.to_dict() for c in checks],
        "coverage": [c.to_dict() for c in coverage],
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
