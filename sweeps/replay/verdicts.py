"""Claims on the replay table: a confirmation phase drawn from the surrogate, judged by
`sweeps.search.claims` and placed by `sweeps.search.allocation`, with the truth to score it.

A replay sweep here is a random search over the table's design configs (``searched`` of them, each
with one seed drawn as the simulator draws a trial: the surrogate's mean, the level's trial noise
and the world's model-seed effect), the service's candidate ranking (`sweeps.search.confirm.candidates`)
for the ``top`` to confirm, then replicates of those and of every baseline of the table's spec: a
first round of ``seeds`` each and, when ``adaptive``, further rounds from `next_replicates` until the
``budget`` (replicate trials in all) is spent; else the budget spread evenly at once (today's
``top x seeds``). Model seed k of every config is the spec's ``replicate_seed(k)``, so configs share
the seed effect as trained models do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from sweeps.search.allocation import confirm_rounds
from sweeps.search.claims import Design, Replicate
from sweeps.search.confirm import candidates as rank_candidates
from .surrogate import Surrogate, World

__all__ = ["ReplaySweep", "replay_sweep"]


@dataclass(frozen=True)
class ReplaySweep:
    """One replayed confirmation: the replicates (values: final accuracy, noise score / max), the
    confirmed candidates, every config's truth, and how many later-round replicates went to
    baselines."""

    replicates: tuple[Replicate, ...]
    candidates: tuple[str, ...]
    truths: Mapping[str, tuple[float, float]]
    later: int
    on_baselines: int


def replay_sweep(surrogate: Surrogate, spec: Any, index: int, design: Design, budget: int, adaptive: bool,
                 searched: int = 48, top: int = 4, seeds: int = 3, mode: str = "drawn") -> ReplaySweep:
    """Replay sweep ``index`` (its world and its draws follow from it)."""
    world = World(surrogate.noise, mode, index)
    rows = [r["params"] for r in surrogate.table.searched() if r["kind"] == "design"]
    pick = np.random.default_rng([index, 4242]).choice(len(rows), size=min(searched, len(rows)), replace=False)
    params = {f"t{j:03d}": dict(rows[int(i)]) for j, i in enumerate(pick)}
    names = list(params)
    first = []
    for j, name in enumerate(names):
        acc, noise = surrogate.draw(params[name], None, spec.seed, world, key=(j, 0))
        first.append((float(acc[-1]), float(noise[-1])))
    chosen = [names[i] for i in rank_candidates(first, top)]
    baselines = list(design.baselines)
    truths = {c: surrogate.truth(params[c]) for c in chosen} | {b: surrogate.truth(None, b) for b in baselines}
    source = {c: names.index(c) for c in chosen} | {b: 10_000 + i for i, b in enumerate(baselines)}

    def replicate(config: str, k: int, look: int) -> Replicate:
        base = config if config in baselines else None
        acc, noise = surrogate.draw(None if base else params[config], base, spec.replicate_seed(k), world,
                                    key=(source[config], k))
        return Replicate(config, k, look, (float(acc[-1]), float(noise[-1])))

    configs = [*chosen, *baselines]
    if not adaptive:
        each = budget // len(configs)
        reps = [replicate(c, k, 1) for c in configs for k in range(1, each + 1)]
        return ReplaySweep(tuple(reps), tuple(chosen), truths, 0, 0)
    reps = confirm_rounds(design, replicate, configs, chosen, seeds, budget)
    later = reps[len(configs) * seeds:]
    return ReplaySweep(tuple(reps), tuple(chosen), truths, len(later), sum(r.config in baselines for r in later))

