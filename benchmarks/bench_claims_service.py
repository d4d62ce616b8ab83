"""The claims as the service makes them, checked against the replay table's truth: whole simulated
sweeps through `sweeps.replay.simulate` (the sweep's own `SweepStudy`: the search, the first round
of replicates, the later look the allocation plans), then `sweeps best`'s claims of the chosen
config (`sweeps.results.best.sweep_claims`, adjusted for the choice), each judged true or false on
the surrogate's noise-free truth at its margin.

Two confirmations at equal replicate trials, on the replay table's spec (its searched trials at
random: 8 on mnist-quick's committed table, 48 on the first one; its two baselines): adaptive (``confirm: {top: 4, seeds: 3, budget: 36, looks:
2}``) and fixed (``{top: 4, seeds: 6}``: the same 36 trials spread evenly in one look). Printed per
setting: the "better"/"worse" claims and how many are true (exact 95 % interval), the "equivalent"
ones, how often a chosen config truly two margins better than dense on the noise score is called
better, and the replicates that went to the baselines.

    python -m benchmarks.bench_claims_service [--sweeps 400] [--table PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path

from benchmarks.common import REPLAY_TABLE, machine_record, write_json

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"adaptive": {"top": 4, "seeds": 3, "budget": 36, "looks": 2}, "fixed": {"top": 4, "seeds": 6, "looks": 1}}


def run(setting: str, sweeps: int, table_path: Path) -> dict:
    from scipy.stats import binomtest

    from sweeps.replay import fit_surrogate, load_table, simulate
    from sweeps.spec import Confirm

    table = load_table(table_path)
    surrogate = fit_surrogate(table)
    spec = dataclasses.replace(table.spec, searcher=dataclasses.replace(table.spec.searcher, algorithm="random"),
                               confirm=Confirm(**SETTINGS[setting]))
    directional = equivalent = true_dir = true_eq = 0
    strong = strong_called = on_baselines = later = 0
    for seed in range(sweeps):
        result = simulate(spec, surrogate, seed)
        reps = [t for t in result.trials if t.replicate_of is not None]
        on_baselines += sum(t.baseline is not None for t in reps)
        later += len(reps)
        for c in result.handover.claims:
            if c.directional:
                directional += 1
                true_dir += bool(c.correct)
            elif c.verdict == "equivalent":
                equivalent += 1
                true_eq += bool(c.correct)
        noise = result.handover.claim("dense", "val_noise_score")
        if noise is not None and noise.true > 2 * noise.margin:
            strong += 1
            strong_called += noise.verdict == "better"

    def share(k: int, n: int) -> dict:
        ci = binomtest(k, n).proportion_ci(method="exact") if n else None
        return {"k": k, "n": n, "rate": k / n if n else None, "ci95": None if ci is None else [ci.low, ci.high]}

    return {"confirm": SETTINGS[setting], "sweeps": sweeps, "directional_true": share(true_dir, directional),
            "equivalent_true": share(true_eq, equivalent), "resolved_true": true_dir + true_eq,
            "truly_2_margins_better_called_better": share(strong_called, strong),
            "replicates_on_baselines": share(on_baselines, later)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=int, default=400)
    parser.add_argument("--table", type=Path, default=REPLAY_TABLE)
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = {}
    for setting in SETTINGS:
        r = out[setting] = run(setting, args.sweeps, args.table)
        d, e = r["directional_true"], r["equivalent_true"]
        print(f"{setting}: better/worse claims {d['k']}/{d['n']} true"
              + (f" ({100 * d['rate']:.1f} %, CI {100 * d['ci95'][0]:.1f}-{100 * d['ci95'][1]:.1f})" if d["n"] else "")
              + f"; equivalent {e['k']}/{e['n']} true; 2-margin winners called better "
              f"{r['truly_2_margins_better_called_better']['k']}/{r['truly_2_margins_better_called_better']['n']}; "
              f"replicates on baselines {r['replicates_on_baselines']['k']}/{r['replicates_on_baselines']['n']}", flush=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = ROOT / "benchmarks" / "results" / f"claims-service-{stamp}.json"
    write_json(path, {"table": str(args.table.relative_to(ROOT)) if args.table.is_relative_to(ROOT) else str(args.table),
                      "settings": out, "machine": machine_record(ROOT)})
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
