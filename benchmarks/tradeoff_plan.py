"""How many replicate trials the trade-off preset needs for its claim against dense to resolve,
planned on the budget map's spreads before a sweep is spent on it.

At the map's budget of 12,000 images x 2 epochs, scored on the 5,000 validation images
(``benchmarks/results/budget-map/12k``, epoch 2): each network's mean and seed-to-seed sd of
validation accuracy and noise score. A confirmation is replayed from them as normal draws: a first
round of ``seeds`` each for two candidates (the map's ``sparse`` and ``sparse-k25-w50``) and dense,
then `sweeps.search.allocation.next_replicates` rounds within the replicate ``budget`` and ``looks``,
and the claims of the first candidate as `sweeps best` makes them
(`sweeps.search.claims.chosen_claims`, adjusted for the choice among the two, the default margins:
0.5 accuracy points and 1 % of the 55,000 maximum). Printed per setting: how often the noise-score
claim against dense resolves (and the accuracy one), with its 95 % interval, and how many of the
replicates went to dense.

    python -m benchmarks.tradeoff_plan [--sweeps 400]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import machine_record, write_json

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "benchmarks" / "results" / "budget-map" / "12k"
EPOCH = 2
NOISE_MAX = 55_000.0
NETWORKS = {"dense": "dense", "#1": "sparse", "#2": "sparse-k25-w50"}
SETTINGS = ((40, 3, 2), (56, 3, 2), (80, 3, 2), (100, 3, 2), (80, 3, 3), (80, 2, 2))  # budget, seeds, looks


def spreads() -> dict[str, tuple[float, float, float, float, int]]:
    """(accuracy mean, sd, noise mean, sd, n) of each network at epoch 2, from the map's runs."""
    out = {}
    for name, net in NETWORKS.items():
        acc, noise = [], []
        for f in sorted(MAP.glob(f"{net}-seed*.json")):
            e = next(x for x in json.loads(f.read_text())["epochs"] if x["epoch"] == EPOCH)
            acc.append(e["val_accuracy"])
            noise.append(e["val_noise_score"])
        out[name] = (statistics.mean(acc), statistics.stdev(acc), statistics.mean(noise), statistics.stdev(noise), len(acc))
    return out


def replay(stats, budget: int, seeds: int, looks: int, rng: np.random.Generator) -> tuple[str, str, int, int]:
    from sweeps.search.allocation import confirm_rounds
    from sweeps.search.claims import Design, Replicate, chosen_claims, margin_value

    design = Design(("val_accuracy", "val_noise_score"),
                    (margin_value("val_accuracy", 0.5), margin_value("val_noise_score", 0.01, NOISE_MAX)), ("dense",),
                    looks=looks)

    def draw(config: str, k: int, look: int) -> Replicate:
        a, sa, n, sn, _ = stats[config]
        return Replicate(config, k, look, (float(rng.normal(a, sa)), float(rng.normal(n, sn))))

    reps = confirm_rounds(design, draw, list(stats), ["#1", "#2"], seeds, budget)
    cc = chosen_claims(design, reps, "#1", ["#1", "#2"], chosen_at_look=max(r.look for r in reps))
    v = {x.objective: x.verdict for x in cc.verdicts}
    return v["val_noise_score"], v["val_accuracy"], sum(r.config == "dense" for r in reps), len(reps)


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import binomtest

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", type=int, default=400)
    args = parser.parse_args(argv)
    stats = spreads()
    rows = []
    for budget, seeds, looks in SETTINGS:
        rng = np.random.default_rng([budget, seeds, looks])
        out = [replay(stats, budget, seeds, looks, rng) for _ in range(args.sweeps)]
        noise, acc = Counter(o[0] for o in out), Counter(o[1] for o in out)
        k = noise["better"]
        ci = binomtest(k, args.sweeps).proportion_ci(method="exact")
        rows.append({"budget": budget, "seeds": seeds, "looks": looks, "noise_verdicts": dict(noise),
                     "accuracy_verdicts": dict(acc), "noise_better_rate": k / args.sweeps,
                     "noise_better_ci95": [ci.low, ci.high],
                     "dense_replicates_mean": float(np.mean([o[2] for o in out])),
                     "replicates_mean": float(np.mean([o[3] for o in out]))})
        print(f"budget {budget:3d}, {seeds} seeds, {looks} looks: noise 'better' in {k}/{args.sweeps} "
              f"({100 * k / args.sweeps:.0f} %, 95 % CI {100 * ci.low:.0f}-{100 * ci.high:.0f} %); accuracy {dict(acc)}; "
              f"{rows[-1]['dense_replicates_mean']:.1f} of {rows[-1]['replicates_mean']:.1f} replicates on dense")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "benchmarks" / "results" / f"tradeoff-plan-{stamp}.json"
    write_json(out, {"spreads": {k: dict(zip(("acc_mean", "acc_sd", "noise_mean", "noise_sd", "n"), v))
                                 for k, v in stats.items()},
                     "noise_max": NOISE_MAX, "sweeps": args.sweeps, "settings": rows, "machine": machine_record(ROOT)})
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
