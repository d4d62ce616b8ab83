"""A sweep's replicates as the claims read them: the one bridge from the record (`sweeps.search.record`)
to `sweeps.search.claims` and `sweeps.search.allocation`.

The study plans its later looks from it (`sweeps.search.study`), and every command that shows a
claim computes it through it (`sweeps.results.best.sweep_claims`), so the seeds, looks and margins
behind a claim are read one way:

* a config is named by its baseline's name, or ``#N`` for a searched config (N its first trial);
* its evidence is its seed replicates only (``replicate_k`` is the seed, ``look`` the round): a
  searched config's first seed chose it (the winner's curse), and leaving the baselines' first
  seed out too keeps every config of a round on the same model seeds, so the tests pair them;
* the margins are the spec's (`sweeps.spec.Confirm.margin`), the noise score's share turned into
  score points by the noise maximum its trials recorded.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from sweeps.search import record as rec
from sweeps.search.claims import ALPHA, Design, Replicate, margin_value

__all__ = ["config_name", "replicates", "design", "noise_max"]


def config_name(trial: Any) -> str:
    """The name claims give a config: its baseline's, else ``#N`` of its first trial (``trial``:
    the first trial, a replicate, or a `ConfigSummary`)."""
    attrs = trial.user_attrs
    if attrs.get(rec.BASELINE):
        return str(attrs[rec.BASELINE])
    return f"#{attrs.get(rec.REPLICATE_OF, trial.number)}"


def replicates(trials: Sequence[Any]) -> tuple[Replicate, ...]:
    """Every COMPLETE seed replicate of ``trials`` as a `Replicate` (seed: its ``replicate_k``; look:
    its ``look``, 1 for replicates recorded before looks were)."""
    out = []
    for t in trials:
        if rec.is_replicate(t) and rec.is_complete(t) and rec.REPLICATE_K in t.user_attrs:
            out.append(Replicate(config_name(t), int(t.user_attrs[rec.REPLICATE_K]),
                                 int(t.user_attrs.get(rec.LOOK, 1)), (float(t.values[0]), float(t.values[1]))))
    return tuple(out)


def noise_max(trials: Sequence[Any]) -> float | None:
    """The noise score's maximum as the trials recorded it (the largest; None when none did)."""
    values = [float(v) for v in (t.user_attrs.get(rec.NOISE_MAX) for t in trials) if v]
    return max(values) if values else None


def design(margins: Mapping[str, float], baselines: Sequence[str], looks: int, top: float | None,
           alpha: float = ALPHA) -> Design | None:
    """The claims' `Design` for a sweep: ``margins`` as its spec gives them (objective -> points or
    share), its ``baselines`` by name, at most ``looks`` looks, ``top`` the noise score's maximum
    (`noise_max`); None when a margin cannot be set yet (no trial recorded that maximum) or the
    sweep has no baseline."""
    if not baselines:
        return None
    try:
        values = tuple(margin_value(o, float(margins[o]), top) for o in rec.OBJECTIVES)
    except ValueError:
        return None
    if not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return Design(tuple(rec.OBJECTIVES), values, tuple(baselines), alpha=alpha, looks=looks)
