"""A sweep's record: what each Optuna trial holds, and the configs and front read from it.

The one owner of the record's vocabulary. The study writes it (`sweeps.search.study`), the
trainable's report fills it (`sweeps.search.trial_report.TrialReport`), the service, the readers
(`sweeps.results.read`), the report and the replay simulator read it, all through the names here:

* the two objectives, in the order Optuna stores them (`OBJECTIVES`);
* the user attribute keys of a trial (``BASELINE``, ``REPLICATE_OF``, ``MODEL_SEED`` ...), and which
  of them each reader asks for (`ROW_ATTRS` for a row, `CONFIG_ATTRS` for grouping seeds into
  configs and comparing them);
* the kinds of trial (`is_searched`, `is_replicate`, `is_complete`);
* `ConfigSummary`: one config over its seeds, and `config_summaries` / `config_front`, the front
  on the configs' means;
* `trial_row` (a trial or config as plain values) and `hypervolume_curve`.

Import-light: plain Python, the statistics (`sweeps.search.confirm`) and the Pareto math load
only when a summary is estimated or a front computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

__all__ = [
    "OBJECTIVES", "BASELINE", "REPLICATE_OF", "REPLICATE_K", "LOOK", "LOOK_PLANS", "MODEL_SEED", "CONFIG", "FAIL_REASON", "RAY_TRIAL_ID",
    "TEST_ACCURACY", "TEST_NOISE_SCORE", "NOISE_MAX", "VAL_CURVE", "TEST_CURVE", "STOPPED_AT_EPOCH",
    "EARLY_VAL_ACCURACY", "EARLY_VAL_NOISE_SCORE", "REPORTED", "ROW_ATTRS", "CONFIG_ATTRS", "CHOSEN_ATTRS",
    "FIRST", "ORPHANED", "is_complete", "is_replicate", "is_searched", "is_orphaned", "config_of", "ConfigSummary", "config_summaries",
    "config_front", "trial_row", "hypervolume_curve",
]

# The two objectives, both maximized, in the order Optuna stores a trial's values.
OBJECTIVES = ("val_accuracy", "val_noise_score")

# -- a trial's user attributes ----------------------------------------------------------------------
# Written when the trial is asked (`SweepStudy.ask`, `ask_replicate`):
CONFIG = "config"  # the trial's whole config: searched values, or a baseline's own (`SweepSpec.trial` reads it)
BASELINE = "baseline"  # a baseline's name (its replicates carry it too)
REPLICATE_OF = "replicate_of"  # a seed replicate: the number of its config's first trial
REPLICATE_K = "replicate_k"  # which replicate of that config (1, 2, ...): the claims' seed
LOOK = "look"  # the confirmation round that asked it (1: the first round of confirm.top x seeds)
MODEL_SEED = "model_seed"  # a replicate's model seed (a first trial trains with the spec's seed)
RAY_TRIAL_ID = "ray_trial_id"  # the Ray trial that ran it
# Written when the trial ends (`SweepStudy.tell`):
TEST_ACCURACY = "test_accuracy"
TEST_NOISE_SCORE = "test_noise_score"
NOISE_MAX = "noise_max"  # the largest possible noise score (levels x samples)
VAL_CURVE = "val_curve"  # the validation noise curve (`NoiseCurve.to_dict()` form)
TEST_CURVE = "test_curve"
FAIL_REASON = "fail_reason"
STOPPED_AT_EPOCH = "stopped_at_epoch"  # stopped early: its last values stay off the front
EARLY_VAL_ACCURACY = "early_val_accuracy"
EARLY_VAL_NOISE_SCORE = "early_val_noise_score"
# The study's own record (a study user attribute): parameter -> importance per objective, fitted
# once when the sweep ends (fANOVA costs seconds at thousands of trials); reports read it, never refit.
IMPORTANCES = "importances"
# The confirmation's later looks as they were planned (`sweeps.search.study`): look -> [[config, k], ...].
LOOK_PLANS = "look_plans"

# What a finished trial's report leaves on it besides its objectives (`TrialReport` fields of these names).
REPORTED = (TEST_ACCURACY, TEST_NOISE_SCORE, NOISE_MAX, VAL_CURVE, TEST_CURVE)
# What grouping seeds into configs and comparing them reads (`config_summaries`, the paired tests).
CONFIG_ATTRS = (BASELINE, REPLICATE_OF, REPLICATE_K, LOOK, MODEL_SEED, TEST_ACCURACY, TEST_NOISE_SCORE, NOISE_MAX)
# What a row shows (`trial_row`, `sweeps status`).
ROW_ATTRS = (*CONFIG_ATTRS, CONFIG, FAIL_REASON, RAY_TRIAL_ID)
# What the chosen config's first trial is read with in full for `best` and `export`.
CHOSEN_ATTRS = (*ROW_ATTRS, TEST_CURVE, VAL_CURVE)


# -- kinds of trial ---------------------------------------------------------------------------------

def is_complete(t: Any) -> bool:
    """Finished every epoch, with both objectives."""
    return getattr(t.state, "name", str(t.state)) == "COMPLETE" and bool(t.values)


def is_replicate(t: Any) -> bool:
    return REPLICATE_OF in t.user_attrs


def is_searched(t: Any) -> bool:
    """A trial whose config the sampler proposed (not a baseline, not a replicate)."""
    return BASELINE not in t.user_attrs and REPLICATE_OF not in t.user_attrs


ORPHANED = "orphaned"  # how the fail reason of a trial lost with a stopped driver starts


def is_orphaned(t: Any) -> bool:
    """Failed because the driver running it stopped (asked again by the plan; counted apart)."""
    return getattr(t.state, "name", str(t.state)) == "FAIL" and str(t.user_attrs.get(FAIL_REASON, "")).startswith(ORPHANED)


def config_of(t: Any) -> dict[str, Any]:
    """The trial's config (its ``config`` attribute; its params where a store lacks it)."""
    return t.user_attrs[CONFIG] if CONFIG in t.user_attrs else t.params


# -- configs over seeds -----------------------------------------------------------------------------

FIRST = "first"  # the model seed of a config's first trial (the spec's seed), in `ConfigSummary.seeds`


@dataclass(frozen=True)
class ConfigSummary:
    """One config of a sweep over its seeds: its first trial (``trial``, ``number``), the values
    its figures rest on (`sweeps.search.confirm.confirmation_values`: a searched config's replicates
    only, once it has them) and their estimates. ``values`` holds the two means, so the front and
    `sweeps.results.best.choose` take a summary wherever they take a trial."""

    trial: Any
    baseline: str | None
    replicates: tuple[Any, ...]  # its COMPLETE replicate trials
    accuracy: tuple[float, ...]
    noise: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    test_noise: tuple[float, ...]
    # The model seed of each of ``accuracy`` and ``noise``: a replicate's ``model_seed``, FIRST for
    # a first trial (every config's first trial trains with the spec's seed). Pairs `compare`.
    seeds: tuple[object, ...] = ()

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def state(self) -> Any:
        return self.trial.state

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self.trial.user_attrs

    @property
    def params(self) -> dict[str, Any]:
        return self.trial.params

    @property
    def confirmed(self) -> bool:
        return bool(self.replicates)

    @property
    def values(self) -> list[float]:
        return [sum(self.accuracy) / len(self.accuracy), sum(self.noise) / len(self.noise)]

    def estimates(self) -> dict[str, Any]:
        """`sweeps.search.confirm.Estimate` of each objective (and of the test figures where known)."""
        from sweeps.search.confirm import estimate

        out = {"val_accuracy": estimate(self.accuracy), "val_noise_score": estimate(self.noise)}
        if self.test_accuracy:
            out[TEST_ACCURACY] = estimate(self.test_accuracy)
        if self.test_noise:
            out[TEST_NOISE_SCORE] = estimate(self.test_noise)
        return out

    def seed_trials(self) -> list[Any]:
        """The COMPLETE trials its figures rest on (a confirmed searched config: its replicates)."""
        seeds = list(self.replicates) if (self.replicates and is_searched(self.trial)) else [self.trial, *self.replicates]
        return [t for t in seeds if is_complete(t)]


def config_summaries(trials: Sequence[Any]) -> list[ConfigSummary]:
    """Every config with at least one finished seed, by its first trial's number: searched configs
    and baselines, each with its replicates (`sweeps.search.study`)."""
    from sweeps.search.confirm import confirmation_values

    reps: dict[int, list[Any]] = {}
    for t in trials:
        if is_replicate(t) and is_complete(t):
            reps.setdefault(int(t.user_attrs[REPLICATE_OF]), []).append(t)
    out = []
    for t in trials:
        if is_replicate(t):
            continue
        mine = sorted(reps.get(t.number, []), key=lambda r: r.number)
        first = [t] if is_complete(t) else []
        if not first and not mine:
            continue
        selected = is_searched(t)

        def values(key: str) -> tuple[float, ...]:
            firsts = [v for v in (x.user_attrs.get(key) for x in first) if v is not None]
            again = [v for v in (x.user_attrs.get(key) for x in mine) if v is not None]
            return tuple(float(v) for v in confirmation_values(firsts, again, selected))

        counted = confirmation_values(first, mine, selected)  # the trials the objectives rest on
        out.append(ConfigSummary(
            trial=t, baseline=t.user_attrs.get(BASELINE), replicates=tuple(mine),
            accuracy=tuple(float(x.values[0]) for x in counted), noise=tuple(float(x.values[1]) for x in counted),
            test_accuracy=values(TEST_ACCURACY), test_noise=values(TEST_NOISE_SCORE),
            seeds=tuple(x.user_attrs.get(MODEL_SEED, FIRST) if is_replicate(x) else FIRST for x in counted),
        ))
    return out


def config_front(configs: Iterable[ConfigSummary]) -> list[ConfigSummary]:
    """The Pareto front on the configs' means: among the confirmed configs once any config has
    replicates (a single lucky seed is not put beside confirmed means), else among all, as Optuna's
    best_trials; by decreasing validation accuracy."""
    from sweeps.search.pareto import front_flags

    configs = list(configs)
    pool = [c for c in configs if c.confirmed] or configs
    pool.sort(key=lambda c: (-c.values[0], -c.values[1]))
    return [c for c, on in zip(pool, front_flags([tuple(c.values) for c in pool])) if on]


# -- plain views ------------------------------------------------------------------------------------

def trial_row(t: Any) -> dict[str, Any]:
    """A trial as a row of plain values; a `ConfigSummary` adds ``seeds`` and, per objective,
    ``estimates`` (mean, 95 % interval, n) and shows the means."""
    a = t.user_attrs
    row = {
        "number": t.number,
        "state": t.state.name,
        BASELINE: a.get(BASELINE, ""),
        "val_accuracy": t.values[0] if t.values else None,
        "val_noise_score": t.values[1] if t.values else None,
        TEST_ACCURACY: a.get(TEST_ACCURACY),
        TEST_NOISE_SCORE: a.get(TEST_NOISE_SCORE),
        "params": config_of(t),
        FAIL_REASON: a.get(FAIL_REASON, ""),
        RAY_TRIAL_ID: a.get(RAY_TRIAL_ID, ""),
        REPLICATE_OF: a.get(REPLICATE_OF),
        MODEL_SEED: a.get(MODEL_SEED),
    }
    if isinstance(t, ConfigSummary):
        est = t.estimates()
        row.update(val_accuracy=t.values[0], val_noise_score=t.values[1], seeds=len(t.accuracy),
                   replicates=len(t.replicates), estimates={k: e.to_dict() for k, e in est.items()})
        for key in (TEST_ACCURACY, TEST_NOISE_SCORE):
            if key in est:
                row[key] = est[key].mean
    return row


def hypervolume_curve(trials: Sequence[Any], reference: tuple[float, float] = (0.0, 0.0)) -> tuple[list[int], list[float]]:
    """(trials ended, hypervolume of the COMPLETE trials by then) after each trial that ended
    (COMPLETE or stopped early; seed replicates are no new configs and are left out), in the order
    they ended; objectives scaled to [0, 1] (the noise score by its maximum, ``noise_max``), as the
    replay benchmark measures it."""
    from sweeps.search.pareto import anytime_hypervolume

    ended = sorted((t for t in trials if getattr(t.state, "name", "") in ("COMPLETE", "PRUNED")
                    and t.datetime_complete is not None and not is_replicate(t)),
                   key=lambda t: (t.datetime_complete, t.number))
    points = []
    for t in ended:
        if is_complete(t):
            noise_max = float(t.user_attrs.get(NOISE_MAX) or 0)
            points.append((t.values[0], t.values[1] / noise_max if noise_max > 0 else 0.0))
        else:
            points.append((-math.inf, -math.inf))  # a stopped trial adds nothing
    return list(range(1, len(ended) + 1)), anytime_hypervolume(points, reference).tolist()
