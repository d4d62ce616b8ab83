"""Which configs get the next model seeds: the seeds go where the variance of the decision is.

After the first confirmation round, each further round (a look of the group-sequential test in
`sweeps.search.claims`) spends a share of the remaining seed budget (in trials): the budget left
divided by the looks left. Within a round the seeds go one at a time, greedily, to the config whose
next seed shrinks most the sum, over the comparisons not yet resolved, of each comparison's
variance in units of its margin, sum of sd_j^2 / (n_j margin^2) over the unresolved comparisons
config j is in. A baseline is in every candidate's comparisons, so when its seed-to-seed sd is
large it gets most of the seeds (for k candidates with sd s_c against one baseline with s_b this
is Dunnett's allocation, n_b / n_c = sqrt(k) s_b / s_c). The allocation reads only the spreads
and which comparisons are still open; the error guarantee is the test's (every look's family
tested at its spent level, summing to alpha), so adding seeds later, `sweeps confirm` run again,
does not inflate it.

A config's seeds are model seeds 1, 2, 3 ... shared by every config (seed k of two configs is the
same model seed, so where two configs hold the same seeds the test pairs them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from sweeps.search.claims import PLAN_DF, Design, Replicate, Verdict, pooled_sd, verdicts

__all__ = ["Plan", "next_replicates", "confirm_rounds", "pairing_ratio", "PAIRING"]

# Below this ratio of the paired variance of the open comparisons' per-seed differences to their
# unpaired variance (sd_a^2 + sd_b^2), the rounds keep the pairs: the configs still in an open
# comparison all get the same new seeds (a shared model-seed effect is worth more than the freedom
# to spread the seeds).
PAIRING = 0.75


@dataclass(frozen=True)
class Plan:
    """The next round: ``seeds`` (config, model seed) to train as look ``look``, or ``done`` with the
    reason; ``verdicts`` as they stand before it."""

    done: bool
    reason: str
    look: int
    seeds: tuple[tuple[str, int], ...]
    verdicts: tuple[Verdict, ...]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for config, _ in self.seeds:
            out[config] = out.get(config, 0) + 1
        return out


def _spreads(design: Design, replicates: Sequence[Replicate], configs: Sequence[str]) -> dict[tuple[str, int], float]:
    """sd per (config, objective): its own where it has PLAN_DF - 2 df or more, else pooled over the
    configs of its role (baselines or candidates)."""
    values: dict[str, list[tuple[float, ...]]] = {}
    for r in replicates:
        values.setdefault(r.config, []).append(r.values)
    own: dict[tuple[str, int], tuple[float, float]] = {}
    for c in configs:
        x = np.asarray(values.get(c, []), dtype=float)
        for o in range(len(design.objectives)):
            own[(c, o)] = (float(x[:, o].std(ddof=1)), float(len(x) - 1)) if len(x) >= 2 else (math.nan, 0.0)
    out = {}
    for c in configs:
        role = [b for b in configs if (b in design.baselines) == (c in design.baselines)]
        for o in range(len(design.objectives)):
            sd, df = own[(c, o)]
            if not (math.isfinite(sd) and df >= PLAN_DF - 2):
                pooled, pdf = pooled_sd(own[(b, o)] for b in role)
                sd = pooled if pdf > 0 else sd
            out[(c, o)] = sd if math.isfinite(sd) else 0.0
    return out


def pairing_ratio(design: Design, replicates: Sequence[Replicate], open_: Sequence[Verdict]) -> float | None:
    """Sum over the open comparisons with the same seeds on both sides of var(a - b) / margin^2,
    over the same sum of (var a + var b) / margin^2: how much of the variance the pairs cancel
    (None when no open comparison has two shared seeds)."""
    values: dict[str, dict[int, tuple[float, ...]]] = {}
    for r in replicates:
        values.setdefault(r.config, {})[r.seed] = r.values
    obj = {name: i for i, name in enumerate(design.objectives)}
    paired = unpaired = 0.0
    for v in open_:
        a, b = values.get(v.candidate, {}), values.get(v.baseline, {})
        shared = sorted(set(a) & set(b))
        if len(shared) < 2:
            continue
        o = obj[v.objective]
        xa = np.array([a[s][o] for s in shared])
        xb = np.array([b[s][o] for s in shared])
        paired += float((xa - xb).var(ddof=1)) / v.margin**2
        unpaired += float(xa.var(ddof=1) + xb.var(ddof=1)) / v.margin**2
    return None if unpaired == 0 else paired / unpaired


def next_replicates(design: Design, replicates: Sequence[Replicate], budget_left: int,
                    candidates: Sequence[str] | None = None,
                    exclude: Mapping[str, Sequence[int]] | None = None) -> Plan:
    """The next round for ``replicates`` (every look so far) with ``budget_left`` trials: done when
    every comparison is resolved, the looks are spent, or the budget is; else up to
    budget_left // looks left new seeds, each to the config whose seed most shrinks the unresolved
    comparisons' variance (in margins), or, where the pairs cancel much of that variance
    (`pairing_ratio` below `PAIRING`), the same new seeds to every config still in an open
    comparison. ``exclude``: seeds a config must not get (a searched config's selecting seed)."""
    if budget_left < 0:
        raise ValueError(f"budget_left={budget_left!r}: must be >= 0")
    vs = verdicts(design, replicates, candidates, plans=False)
    last = max((r.look for r in replicates), default=0)
    open_ = [v for v in vs if not v.claimed]
    if vs and not open_:
        return Plan(True, "every comparison is resolved", last, (), vs)
    if last >= design.looks:
        return Plan(True, f"all {design.looks} looks are spent", last, (), vs)
    if budget_left == 0:
        return Plan(True, "the seed budget is spent", last, (), vs)
    batch = max(1, budget_left // (design.looks - last))
    names = sorted({r.config for r in replicates} | set(design.baselines) | set(candidates or ()))
    if not vs:  # nothing compared yet: every config one seed at a time up to two each
        open_ = [Verdict(c, b, o, "not resolved", m, math.nan, math.nan, math.nan, 0, 1, "", 0, 0, math.nan, math.nan, 0)
                 for c in names if c not in design.baselines for b in design.baselines
                 for o, m in zip(design.objectives, design.margins)]
    sd = _spreads(design, replicates, names)
    n = {c: 0 for c in names}
    held: dict[str, set[int]] = {c: set(exclude.get(c, ())) if exclude else set() for c in names}
    for r in replicates:
        n[r.config] = n.get(r.config, 0) + 1
        held.setdefault(r.config, set()).add(r.seed)
    ratio = pairing_ratio(design, replicates, open_) if vs else None
    if ratio is not None and ratio < PAIRING:
        members = sorted({v.candidate for v in open_} | {v.baseline for v in open_}, key=names.index)
        looks_left = design.looks - last
        rounds = min(budget_left // len(members), max(1, round(budget_left / (looks_left * len(members)))))
        if rounds == 0:
            return Plan(True, f"the budget left ({budget_left}) is less than a paired round ({len(members)} configs)", last, (), vs)
        common = set().union(*(held[c] for c in members))
        new, seed = [], 1
        while len(new) < rounds:
            if seed not in common:
                new.append(seed)
            seed += 1
        paired_seeds = tuple((c, s) for s in new for c in members)
        return Plan(False, f"{len(paired_seeds)} seeds for look {last + 1}, paired", last + 1, paired_seeds, vs)
    obj = {name: i for i, name in enumerate(design.objectives)}
    weight: dict[tuple[str, int], float] = {}
    for v in open_:
        o = obj[v.objective]
        for c in (v.candidate, v.baseline):
            weight[(c, o)] = weight.get((c, o), 0.0) + 1.0 / v.margin**2
    chosen: list[tuple[str, int]] = []
    for _ in range(batch):
        def gain(c: str) -> float:
            k = n[c]
            if k < 2:
                return math.inf  # below two seeds nothing can be tested
            g = sum(weight.get((c, o), 0.0) * sd[(c, o)] ** 2 for o in range(len(design.objectives))) * (1 / k - 1 / (k + 1))
            if g == 0 and k < design.min_n:
                return 1e300  # zero spread so far: up to min_n seeds before it can count
            return g

        pick = max((c for c in names if any(weight.get((c, o), 0) for o in range(len(design.objectives)))),
                   key=lambda c: (gain(c), -names.index(c)), default=None)
        if pick is None or gain(pick) <= 0:
            break
        seed = 1
        while seed in held[pick]:
            seed += 1
        held[pick].add(seed)
        n[pick] += 1
        chosen.append((pick, seed))
    if not chosen:
        return Plan(True, "no seed would narrow an unresolved comparison", last, (), vs)
    return Plan(False, f"{len(chosen)} seeds for look {last + 1}", last + 1, tuple(chosen), vs)


def confirm_rounds(design: Design, draw: Callable[[str, int, int], Replicate], configs: Sequence[str],
                   candidates: Sequence[str], seeds: int, budget: int) -> list[Replicate]:
    """A whole confirmation without a study (the simulators'): a first round of ``seeds`` for each
    of ``configs`` (look 1), then `next_replicates` rounds within ``budget`` replicate trials until
    it is done; ``draw(config, seed, look)`` trains (or draws) one replicate."""
    reps = [draw(c, k, 1) for c in configs for k in range(1, seeds + 1)]
    left = budget - len(reps)
    while not (plan := next_replicates(design, reps, left, candidates=candidates)).done:
        reps += [draw(c, k, plan.look) for c, k in plan.seeds]
        left -= len(plan.seeds)
    return reps
