"""Are the claims true, and do the seeds go where they help? Synthetic studies with a known truth.

Each simulated sweep: ``SEARCHED`` configs, each with a true difference from the dense baseline on
two objectives drawn from ``GRID`` (in margins) and one searched seed; the top ``TOP`` by that noisy
seed are confirmed (a second winner's curse is in the set-up: the seeds that chose them are not
replicates). Two baselines: dense, whose seed-to-seed sd is ``ratio`` x the candidates', and a
reference with the candidates' sd, true difference 0 to dense. Every seed adds a model-seed effect
shared by every config (sd ``SEED_SD``), so pairing by seed matters.

Settings (each ``--sweeps`` simulated sweeps, at equal total trials per sweep):

* ``adaptive``: the first round top x 3 seeds (and 3 per baseline), then the rest of the budget in
  ``LOOKS - 1`` rounds placed by `sweeps.search.allocation.next_replicates`, tested by
  `sweeps.search.claims.verdicts` (Holm per look, Lan-DeMets O'Brien-Fleming spending over looks);
* ``fixed``: today's ``top x seeds``: every config the same seeds, all at once, one look, the same
  verdicts (margins, Holm);
* ``today``: the fixed seeds judged by today's rule (`sweeps.search.confirm.compare`: two-sided 95 %
  against zero, no margin, no correction), a claim true when the sign is;
* ``null``: every candidate equal to dense: how many sweeps carry a false "better"/"worse";

for the baselines' sd 3x the candidates' (the default) and equal. Reported: the share of
"better"/"worse" claims that are true (with a Wilson 95 % interval), of "equivalent" claims, the
power at 2 margins (a comparison truly 2 margins better called "better"), the true differences
resolved (correct "better"/"worse"), the share of the replicates spent on baselines, and the chosen
config's claims (the best confirmed mean, its intervals adjusted for the choice).

    nice -n 10 python -m benchmarks.bench_claims                  # 200 sweeps a setting
    nice -n 10 python -m benchmarks.bench_claims --sweeps 20      # a quick look

Writes ``benchmarks/results/claims-<UTC>.json`` (every figure, machine, load and commit).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.machine import machine_record
from sweeps.search.allocation import next_replicates
from sweeps.search.claims import Design, Replicate, chosen_claims, verdicts
from sweeps.search.confirm import compare

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ("accuracy", "noise")
MARGIN = 1.0  # the unit: every truth and sd is in margins
GRID = (-2.0, -1.0, 0.0, 0.0, 0.5, 1.5, 2.0, 2.0, 3.0)  # true differences from dense, in margins
SEARCHED, TOP, SEEDS, LOOKS = 12, 4, 3, 3
BUDGET = 2 * (TOP + 2) * SEEDS  # replicate trials in all: twice the first round (36)
CANDIDATE_SD = 0.25  # in margins
SEED_SD = 0.15  # the shared model-seed effect


# (name, baselines' sd / candidates', every candidate's true difference (None: drawn from GRID), sd)
SETTINGS = (
    ("baseline sd 3x", 3.0, None, CANDIDATE_SD),  # the default setting
    ("equal sd", 1.0, None, CANDIDATE_SD),
    ("baseline sd 3x, noisy", 3.0, None, 0.8),
    ("null: every candidate = dense", 3.0, 0.0, CANDIDATE_SD),
    ("null: every candidate 1 margin above dense (no claim true)", 3.0, 1.0, CANDIDATE_SD),
    ("null: 1 margin above, noisy", 3.0, 1.0, 0.8),
)


def _truth(d: float, m: float = MARGIN) -> str:
    return "better" if d > m else "worse" if d < -m else "equivalent" if abs(d) < m else "boundary"


def wilson(k: int, n: int) -> dict:
    if n == 0:
        return {"k": 0, "n": 0, "share": None, "low": None, "high": None}
    z, p = 1.959964, k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"k": k, "n": n, "share": p, "low": max(0.0, c - h), "high": min(1.0, c + h)}


class World:
    """One simulated sweep's truth and its (deterministic) draws: value(config, seed)."""

    def __init__(self, index: int, ratio: float, null: float | None, sd: float = CANDIDATE_SD):
        rng = np.random.default_rng([2026, index, int(ratio * 10), 99 if null is None else int(null * 10), int(sd * 100)])
        self.means = {"dense": (0.0, 0.0), "ref": (0.0, 0.0)}
        self.sds = {"dense": (ratio * sd,) * 2, "ref": (sd,) * 2}
        first = {}
        for j in range(SEARCHED):
            name = f"c{j:02d}"
            self.means[name] = (null, null) if null is not None else tuple(float(x) for x in rng.choice(GRID, 2))
            self.sds[name] = (sd,) * 2
            # the searched seed (seed 0): truth + noise; the top by the sum of both objectives
            first[name] = sum(self.means[name]) + float(rng.normal(0, sd * math.sqrt(2)))
        self.top = sorted(first, key=lambda c: -first[c])[:TOP]
        self.seed_effect = rng.normal(0, SEED_SD, (200, 2))
        self.noise = {c: rng.normal(0, 1, (200, 2)) for c in self.means}

    def value(self, config: str, seed: int) -> tuple[float, ...]:
        return tuple(self.means[config][o] + self.seed_effect[seed, o] + self.sds[config][o] * self.noise[config][seed, o]
                     for o in range(2))

    def replicate(self, config: str, seed: int, look: int) -> Replicate:
        return Replicate(config, seed, look, self.value(config, seed))


def design(looks: int) -> Design:
    return Design(OBJECTIVES, (MARGIN, MARGIN), ("dense", "ref"), looks=looks)


def run_adaptive(world: World) -> tuple[list, int, int]:
    d = design(LOOKS)
    configs = [*world.top, "dense", "ref"]
    reps = [world.replicate(c, s, 1) for c in configs for s in range(1, SEEDS + 1)]
    left = BUDGET - len(reps)
    while True:
        plan = next_replicates(d, reps, left, candidates=world.top)
        if plan.done:
            break
        reps += [world.replicate(c, s, plan.look) for c, s in plan.seeds]
        left -= len(plan.seeds)
    later = reps[len(configs) * SEEDS:]
    on_baselines = sum(r.config in d.baselines for r in later)
    return reps, len(later), on_baselines


def run_fixed(world: World) -> list:
    seeds = BUDGET // (TOP + 2)
    return [world.replicate(c, s, 1) for c in [*world.top, "dense", "ref"] for s in range(1, seeds + 1)]


def score(world: World, vs) -> dict:
    out = {"directional": [0, 0], "equivalent": [0, 0], "power2": [0, 0], "resolved": 0, "any_false": 0}
    for v in vs:
        o = OBJECTIVES.index(v.objective)
        truth = _truth(world.means[v.candidate][o] - world.means[v.baseline][o])
        true_d = world.means[v.candidate][o] - world.means[v.baseline][o]
        if v.verdict in ("better", "worse"):
            out["directional"][0] += v.verdict == truth
            out["directional"][1] += 1
            out["resolved"] += v.verdict == truth
        if v.verdict == "equivalent":
            out["equivalent"][0] += truth == "equivalent"
            out["equivalent"][1] += 1
        if v.claimed and v.verdict != truth:
            out["any_false"] = 1
        if v.baseline == "dense" and abs(true_d - 2 * MARGIN) < 1e-9:
            out["power2"][0] += v.verdict == "better"
            out["power2"][1] += 1
    return out


def today(world: World, reps) -> dict:
    """Today's rule on the same fixed seeds: a claim when the 95 % interval excludes zero."""
    by = {}
    for r in reps:
        by.setdefault(r.config, {})[r.seed] = r.values
    out = {"directional": [0, 0], "any_false": 0}
    for c in world.top:
        for b in ("dense", "ref"):
            for o in range(2):
                seeds = sorted(by[c])
                cmp = compare([by[c][s][o] for s in seeds], [by[b][s][o] for s in seeds], a_seeds=seeds, b_seeds=seeds)
                if cmp.verdict in ("better", "worse"):
                    true_d = world.means[c][o] - world.means[b][o]
                    right = (true_d > 0) if cmp.verdict == "better" else (true_d < 0)
                    out["directional"][0] += right
                    out["directional"][1] += 1
                    out["any_false"] = out["any_false"] or int(not right)
    return out


def chosen(world: World, reps, looks: int) -> dict:
    """The best confirmed mean (sum of objectives) as `best` would choose it, its claims adjusted."""
    means = {c: np.mean([sum(r.values) for r in reps if r.config == c]) for c in world.top}
    pick = max(means, key=means.__getitem__)
    cc = chosen_claims(design(looks), reps, pick, world.top, max(r.look for r in reps))
    s = score(world, cc.verdicts)
    return {"directional": s["directional"], "equivalent": s["equivalent"]}


def add(total: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, list):
            total.setdefault(k, [0, 0])
            total[k][0] += v[0]
            total[k][1] += v[1]
        else:
            total[k] = total.get(k, 0) + v


def run_setting(ratio: float, sweeps: int, null: float | None = None, sd: float = CANDIDATE_SD,
                min_claims: int = 60) -> dict:
    tallies = {"adaptive": {}, "fixed": {}, "today": {}, "adaptive_chosen": {}, "fixed_chosen": {}}
    replicates = [0, 0]
    i = 0
    while i < sweeps or (null is None and tallies["adaptive"].get("directional", [0, 0])[1] < min_claims and i < 5 * sweeps):
        world = World(i, ratio, null, sd)
        reps, later, on_base = run_adaptive(world)
        replicates[0] += later
        replicates[1] += on_base
        add(tallies["adaptive"], score(world, verdicts(design(LOOKS), reps, world.top, plans=False)))
        add(tallies["adaptive_chosen"], chosen(world, reps, LOOKS))
        fixed = run_fixed(world)
        add(tallies["fixed"], score(world, verdicts(design(1), fixed, world.top, plans=False)))
        add(tallies["fixed_chosen"], chosen(world, fixed, 1))
        add(tallies["today"], today(world, fixed))
        i += 1
    out: dict = {"sweeps": i, "baseline_sd_ratio": ratio, "candidate_sd_in_margins": sd,
                 "every_candidate_at_in_margins": null}
    for name, t in tallies.items():
        row = {k: wilson(*v) for k, v in t.items() if isinstance(v, list)}
        row.update({k: v for k, v in t.items() if not isinstance(v, list)})
        if "any_false" in t:
            row["sweeps_with_a_false_claim"] = wilson(t["any_false"], i)
        out[name] = row
    out["adaptive"]["replicates_after_the_first_round"] = replicates[0]
    out["adaptive"]["share_on_baselines"] = replicates[1] / replicates[0] if replicates[0] else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=200, help="simulated sweeps per setting (default 200)")
    args = parser.parse_args()
    started = time.time()
    record = {"benchmark": "claims", "utc": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
              "machine": machine_record(REPO),
              "setup": {"searched": SEARCHED, "top": TOP, "first_round_seeds": SEEDS, "looks": LOOKS,
                        "budget_trials": BUDGET, "margin": MARGIN, "grid_in_margins": GRID,
                        "candidate_sd_in_margins": CANDIDATE_SD, "seed_effect_sd": SEED_SD, "alpha": 0.05,
                        "baselines": ["dense (sd ratio x candidates')", "ref (candidates' sd, truth = dense)"]},
              "settings": {}}
    for name, ratio, null, sd in SETTINGS:
        record["settings"][name] = run_setting(ratio, args.sweeps, null, sd)
        s = record["settings"][name]
        print(f"{name} ({s['sweeps']} sweeps)")
        for variant in ("adaptive", "fixed", "today", "adaptive_chosen", "fixed_chosen"):
            row = s[variant]
            d = row.get("directional", {})
            e = row.get("equivalent", {})
            line = f"  {variant:16s} better/worse true {d.get('k')}/{d.get('n')}"
            if d.get("share") is not None:
                line += f" = {d['share']:.1%} [{d['low']:.1%}, {d['high']:.1%}]"
            if e:
                line += f"; equivalent true {e.get('k')}/{e.get('n')}"
            if "power2" in row and row["power2"]["n"]:
                line += f"; power at 2 margins {row['power2']['share']:.1%} (n={row['power2']['n']})"
            if "resolved" in row:
                line += f"; true differences resolved {row['resolved']}"
            if "sweeps_with_a_false_claim" in row:
                line += f"; sweeps with a false claim {row['sweeps_with_a_false_claim']['share']:.1%}"
            if "share_on_baselines" in row:
                line += f"; replicates on baselines {row['share_on_baselines']:.1%}"
            print(line)
    record["cpu_seconds"] = time.process_time()
    record["wall_seconds"] = time.time() - started
    out = REPO / "benchmarks" / "results" / f"claims-{record['utc']}.json"
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
