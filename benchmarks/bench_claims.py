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

for the baselines' sd 3x the candidates' (the default) and equal; and on the committed replay table
(`sweeps.replay.verdicts`: 48 of its design configs searched at random, the service's top 4, its
two baselines, today's noise model: one trial noise by level and a shared model-seed effect, the
same for every config), adaptive with 2 and 3 looks. Reported: the share of
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

from benchmarks.common import machine_record
from sweeps.search.allocation import next_replicates
from sweeps.search.claims import Design, Replicate, chosen_claims, verdicts
from sweeps.search.confirm import compare

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = ("accuracy", "noise")
MARGIN = 1.0  # the unit: every truth and sd is in margins
GRID = (-2.0, -1.0, 0.0, 0.0, 0.5, 1.5, 2.0, 2.0, 3.0)  # true differences from dense, in margins
SEARCHED, TOP, SEEDS, LOOKS = 12, 4, 3, 2
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
        self.baselines = ("dense", "ref")
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


def score(means, vs, margins=(MARGIN, MARGIN)) -> dict:
    """Claims against the truth ``means`` (config -> true values per objective)."""
    out = {"directional": [0, 0], "equivalent": [0, 0], "power2": [0, 0], "resolved": 0, "any_false": 0}
    for v in vs:
        o = [v.objective == name for name in (OBJECTIVES if v.objective in OBJECTIVES else REPLAY_OBJECTIVES)].index(True)
        true_d = means[v.candidate][o] - means[v.baseline][o]
        truth = _truth(true_d, margins[o])
        if v.verdict in ("better", "worse"):
            out["directional"][0] += v.verdict == truth
            out["directional"][1] += 1
            out["resolved"] += v.verdict == truth
            per = out.setdefault(f"directional_{v.objective}", [0, 0])
            per[0] += v.verdict == truth
            per[1] += 1
        if v.verdict == "equivalent":
            out["equivalent"][0] += truth == "equivalent"
            out["equivalent"][1] += 1
        if v.claimed and v.verdict != truth:
            out["any_false"] = 1
        if v.baseline == "dense" and 2 * margins[o] - 1e-9 <= true_d < 2.5 * margins[o]:
            out["power2"][0] += v.verdict == "better"
            out["power2"][1] += 1
    return out


def today(world, reps) -> dict:
    """Today's rule on the same fixed seeds: a claim when the 95 % interval excludes zero."""
    by = {}
    for r in reps:
        by.setdefault(r.config, {})[r.seed] = r.values
    out = {"directional": [0, 0], "any_false": 0}
    for c in world.top:
        for b in world.baselines:
            for o in range(2):
                seeds = sorted(by[c])
                cmp = compare([by[c][s][o] for s in seeds], [by[b][s][o] for s in seeds], a_seeds=seeds, b_seeds=seeds)
                if cmp.verdict in ("better", "worse"):
                    true_d = world.means[c][o] - world.means[b][o]
                    right = (true_d > 0) if cmp.verdict == "better" else (true_d < 0)
                    out["directional"][0] += right
                    out["directional"][1] += 1
                    per = out.setdefault(f"directional_objective{o}", [0, 0])
                    per[0] += right
                    per[1] += 1
                    out["any_false"] = out["any_false"] or int(not right)
    return out


def chosen(means, top, reps, d: Design) -> dict:
    """The best confirmed mean (sum of objectives in margins) as `best` would choose it, its claims
    adjusted for the choice."""
    observed = {c: np.mean([sum(x / m for x, m in zip(r.values, d.margins)) for r in reps if r.config == c]) for c in top}
    pick = max(observed, key=observed.__getitem__)
    cc = chosen_claims(d, reps, pick, list(top), max(r.look for r in reps))
    s = score(means, cc.verdicts, d.margins)
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
        add(tallies["adaptive"], score(world.means, verdicts(design(LOOKS), reps, world.top, plans=False)))
        add(tallies["adaptive_chosen"], chosen(world.means, world.top, reps, design(LOOKS)))
        fixed = run_fixed(world)
        add(tallies["fixed"], score(world.means, verdicts(design(1), fixed, world.top, plans=False)))
        add(tallies["fixed_chosen"], chosen(world.means, world.top, fixed, design(1)))
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


REPLAY_OBJECTIVES = ("val_accuracy", "val_noise_score")
REPLAY_MARGINS = (0.005, 0.01)  # half a point of accuracy, 1 % of the noise score's maximum


def run_replay(sweeps: int, looks: int = LOOKS) -> dict:
    """The same comparison on the committed replay table (today's noise model: one trial noise by
    level and a shared model-seed effect, the same for every config): 48 searched design configs
    a sweep, the service's top 4, the table's two baselines."""
    from types import SimpleNamespace

    from sweeps.replay import fit_surrogate, load_table
    from sweeps.replay.verdicts import replay_sweep

    table = load_table()
    surrogate = fit_surrogate(table)
    baselines = tuple(b.name for b in table.spec.baselines)
    budget = 2 * (TOP + len(baselines)) * SEEDS
    tallies = {"adaptive": {}, "fixed": {}, "today": {}, "adaptive_chosen": {}, "fixed_chosen": {}}
    replicates = [0, 0]
    for i in range(sweeps):
        for how in ("adaptive", "fixed"):
            d = Design(REPLAY_OBJECTIVES, REPLAY_MARGINS, baselines, looks=looks if how == "adaptive" else 1)
            sweep = replay_sweep(surrogate, table.spec, i, d, budget, adaptive=how == "adaptive", top=TOP, seeds=SEEDS)
            add(tallies[how], score(sweep.truths, verdicts(d, sweep.replicates, sweep.candidates, plans=False), REPLAY_MARGINS))
            add(tallies[f"{how}_chosen"], chosen(sweep.truths, sweep.candidates, sweep.replicates, d))
            if how == "adaptive":
                replicates[0] += sweep.later
                replicates[1] += sweep.on_baselines
            else:
                add(tallies["today"], today(SimpleNamespace(top=sweep.candidates, baselines=baselines, means=sweep.truths),
                                            sweep.replicates))
    out: dict = {"sweeps": sweeps, "looks": looks, "table": str(table.path), "margins": dict(zip(REPLAY_OBJECTIVES, REPLAY_MARGINS)),
                 "budget_trials": budget, "noise_model": surrogate.noise.to_dict()}
    for name, t in tallies.items():
        row = {k: wilson(*v) for k, v in t.items() if isinstance(v, list)}
        row.update({k: v for k, v in t.items() if not isinstance(v, list)})
        if "any_false" in t:
            row["sweeps_with_a_false_claim"] = wilson(t["any_false"], sweeps)
        out[name] = row
    out["adaptive"]["replicates_after_the_first_round"] = replicates[0]
    out["adaptive"]["share_on_baselines"] = replicates[1] / replicates[0] if replicates[0] else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=200, help="simulated sweeps per setting (default 200)")
    parser.add_argument("--replay-sweeps", type=int, default=200, help="sweeps on the replay table (0: none)")
    args = parser.parse_args()
    started = time.time()
    record = {"benchmark": "claims", "utc": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
              "machine": machine_record(REPO),
              "setup": {"searched": SEARCHED, "top": TOP, "first_round_seeds": SEEDS, "looks": LOOKS,
                        "budget_trials": BUDGET, "margin": MARGIN, "grid_in_margins": GRID,
                        "candidate_sd_in_margins": CANDIDATE_SD, "seed_effect_sd": SEED_SD, "alpha": 0.05,
                        "baselines": ["dense (sd ratio x candidates')", "ref (candidates' sd, truth = dense)"]},
              "settings": {}}
    runs = [(name, lambda r=ratio, n=null, sd=sd: run_setting(r, args.sweeps, n, sd)) for name, ratio, null, sd in SETTINGS]
    if args.replay_sweeps:
        runs.append(("replay table", lambda: run_replay(args.replay_sweeps)))
        runs.append(("replay table, 3 looks", lambda: run_replay(args.replay_sweeps, looks=3)))
    for name, run in runs:
        record["settings"][name] = run()
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
            for key in sorted(k for k in row if k.startswith("directional_") and row[k]["n"]):
                line += f"; {key[12:]} {row[key]['k']}/{row[key]['n']}"
            if "sweeps_with_a_false_claim" in row:
                line += f"; sweeps with a false claim {row['sweeps_with_a_false_claim']['share']:.1%}"
            if "share_on_baselines" in row:
                line += f"; replicates on baselines {row['share_on_baselines']:.1%}"
            print(line)
    default = record["settings"]["baseline sd 3x"]
    a, f = default["adaptive"], default["fixed"]
    record["targets"] = {
        "claims_true_share_ge_95pct_ci_low_ge_90pct_over_60_claims":
            a["directional"]["n"] >= 60 and a["directional"]["share"] >= 0.95 and a["directional"]["low"] >= 0.90,
        "equivalence_claims_true_ge_95pct": a["equivalent"]["n"] == 0 or a["equivalent"]["share"] >= 0.95,
        "adaptive_resolves_at_least_as_many_as_fixed": a["resolved"] >= f["resolved"],
        "adaptive_spends_at_least_half_on_baselines": a["share_on_baselines"] >= 0.5,
        "power_at_2_margins": {"adaptive": a["power2"]["share"], "fixed": f["power2"]["share"]},
    }
    if "replay table" in record["settings"]:
        r = record["settings"]["replay table"]
        record["targets"]["replay_adaptive_resolves_at_least_as_many_as_fixed"] = r["adaptive"]["resolved"] >= r["fixed"]["resolved"]
    print("targets:", json.dumps(record["targets"]))
    record["cpu_seconds"] = time.process_time()
    record["wall_seconds"] = time.time() - started
    out = REPO / "benchmarks" / "results" / f"claims-{record['utc']}.json"
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
