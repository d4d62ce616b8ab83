"""How `searcher.algorithm` becomes an Optuna sampler: one construction for real sweeps and for
the replay simulator. Every choice is a sampler Optuna ships; none is written here.

=========  ===============================================================================
name       sampler
=========  ===============================================================================
random     `RandomSampler`
tpe        `TPESampler`, independent per parameter (the service's searcher before 0.2)
tpe-mv     `TPESampler(multivariate=True, constant_liar=True)`: joint density over the
           parameters, and trials still running count as bad so that parallel workers spread
nsga2      `NSGAIISampler`, population a quarter of the budget (4 to 50)
gp         `GPSampler`: a Gaussian process per objective and log expected hypervolume
           improvement; it conditions on running trials
qmc        `QMCSampler`: a scrambled Sobol sequence (seeded), a space-filling design that
           learns nothing: random search with better coverage (Optuna draws the first searched
           trial at random to learn the space; the sequence follows)
qnehvi     BoTorch's qNEHVI (noisy expected hypervolume improvement) through Optuna's
           `BoTorchSampler` (optuna-integration): a noise-aware Bayesian optimiser. An extra
           (`pip install 'sparse-sweeps[botorch]'`, in the lock); about 15-20 s of driver CPU per
           proposal on 2 cores, so meant for sweeps of long trials
=========  ===============================================================================

The first ``startup_trials(budget)`` trials of the model-based samplers are random (Optuna's
default start-up, scaled down for small budgets). This module imports Optuna only when a sampler
is built, so a spec validates without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

__all__ = ["SAMPLERS", "DEFAULT_SAMPLER", "startup_trials", "make_sampler"]

SAMPLERS = ("random", "tpe", "tpe-mv", "nsga2", "gp", "qmc", "qnehvi")
# Scored on the truth of a space with something to find (mnist-quick's replay table, 30 simulated
# sweeps a searcher at 8 and at 48 trials), no sampler reached random search's median in fewer
# trials (one-sided Mann-Whitney p >= 0.33); tpe's slightly better front at 48 trials came with
# the worst at 8. Random is the default (docs/benchmarks/searchers.md); a spec or preset names
# another where it has evidence for it.
DEFAULT_SAMPLER = "random"


def startup_trials(budget_trials: int) -> int:
    """Random trials before a model-based sampler starts modelling: a third of the budget, 2 to 10."""
    return max(2, min(10, budget_trials // 3))


def make_sampler(algorithm: str, seed: int, budget_trials: int,
                 startup: int | None = None) -> "optuna.samplers.BaseSampler":
    import warnings

    import optuna

    if algorithm not in SAMPLERS:
        raise ValueError(f"searcher.algorithm={algorithm!r}: choose one of {', '.join(SAMPLERS)}")
    startup = startup_trials(budget_trials) if startup is None else startup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if algorithm == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if algorithm == "qmc":
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False)
        if algorithm == "qnehvi":
            return _botorch_sampler(seed, startup)
        if algorithm == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, budget_trials // 4 or 4)))
        if algorithm == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
        multivariate = algorithm == "tpe-mv"
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=multivariate, constant_liar=multivariate,
        )


def _botorch_sampler(seed: int, startup: int) -> "optuna.samplers.BaseSampler":
    try:
        from optuna_integration import BoTorchSampler
        from optuna_integration.botorch import qnehvi_candidates_func
    except ImportError as e:
        raise ValueError(
            f"searcher.algorithm='qnehvi' needs BoTorch and Optuna's integration ({e.name} is missing): "
            "pip install 'sparse-sweeps[botorch]', or choose another searcher"
        ) from None
    return BoTorchSampler(candidates_func=qnehvi_candidates_func, n_startup_trials=startup, seed=seed)
