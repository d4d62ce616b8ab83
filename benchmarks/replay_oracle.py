"""What the replay space truly offers: the surrogate's noise-free means over many random configs.

How far above dense, on the true noise score, do the space's best configs lie (with accuracy within
0.5 points of dense's), what is the true hypervolume of the space's whole true front, and how many
seeds per config a Welch test needs for 80 % power at those margins (one trial's standard deviation
from the noise model). The context for the replay benchmark's power figures.

    python -m benchmarks.replay_oracle [--configs 20000] [--table PATH --out PATH]

Writes ``benchmarks/results/replay/replay-oracle-<table spec's name>.json`` by default (the first
table's, ``replay-oracle.json``, is the record). Also
recorded: the best config's margin in units of its own one-trial sd (the noise model's, at its true
level): how far apart the truth puts configs against one seed's spread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=None, help="default: results/replay/replay-oracle-<spec name>.json")
    from benchmarks.common import REPLAY_TABLE

    ap.add_argument("--table", type=Path, default=REPLAY_TABLE, help="replay table (default: the committed one)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np

    from benchmarks.common import machine_record
    from sweeps.replay.surrogate import fit_surrogate
    from sweeps.replay.table import load_table
    from sweeps.replay.truth import ACCURACY_SLACK, reference_point, true_hypervolume
    from sweeps.search.confirm import seeds_for_power
    from sweeps.search.pareto import pareto_mask

    machine = machine_record(HERE.parent, threads=1)
    table = load_table(args.table)
    args.out = args.out or HERE / "results" / "replay" / f"replay-oracle-{table.spec.name}.json"
    model = fit_surrogate(table)
    ref = reference_point(model)
    rng = np.random.default_rng(0)
    params = []
    for _ in range(args.configs):
        p = {}
        for q in table.spec.space:
            u = rng.uniform()
            p[q.name] = float(np.exp(np.log(q.low) + u * (np.log(q.high) - np.log(q.low)))) if q.log else float(q.low + u * (q.high - q.low))
        params.append(p)
    acc, noise = model.mean(params)
    points = np.c_[acc[:, -1], noise[:, -1]]
    dense = model.truth(None, "dense")
    sd = float(model.noise.total_sd_at(dense)[1, -1])  # one trial near the front
    ok = points[:, 0] >= dense[0] - ACCURACY_SLACK
    margins = points[ok, 1] - dense[1]
    best = float(margins.max()) if ok.any() else None
    best_sd = float(model.noise.total_sd_at(tuple(points[ok][int(np.argmax(margins))]))[1, -1]) if ok.any() else None
    front = points[pareto_mask(points)]
    top = np.sort(margins)[::-1]
    record = {
        "benchmark": "replay space oracle", "configs": args.configs, "reference_point": list(ref),
        "dense_truth": list(dense), "accuracy_slack": ACCURACY_SLACK, "noise_sd_one_trial": sd,
        "share_within_slack": float(ok.mean()),
        "share_truly_beating_dense_within_slack": float((margins > 0).sum() / len(points)),
        "best_true_noise_margin_within_slack": best,
        "best_config_one_trial_sd": best_sd,
        "best_margin_in_its_own_sds": None if not best or not best_sd else best / best_sd,
        "margin_percentiles_of_configs_within_slack_99_999": [float(np.percentile(margins, 99)), float(np.percentile(margins, 99.9))],
        "seeds_for_80pct_power_at_best_margin": seeds_for_power(best, sd) if best else None,
        "seeds_for_80pct_power_at_margin_0.01": seeds_for_power(0.01, sd),
        "seeds_for_80pct_power_at_margin_0.02": seeds_for_power(0.02, sd),
        "true_front_hypervolume": true_hypervolume([tuple(p) for p in front], ref),
        "true_front": front.tolist(), "top10_margins": top[:10].tolist(), "machine": machine,
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k not in ("true_front", "machine")}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
