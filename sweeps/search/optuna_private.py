"""The one home of Optuna's private internals the search relies on.

Each name here reaches into Optuna's private parts because no public API gives the same thing;
`tests/test_internals.py` fails loudly when Optuna changes one of them. (Ray's private APIs live
in `sweeps.run.ray_private`; the raw reader of Optuna's tables, which uses no Optuna code at
all, in `sweeps.stores.optuna_tables`.)

* `compute_hypervolume`: Optuna's exact hypervolume (``optuna._hypervolume``); Optuna's public API
  only plots it (`optuna.visualization.plot_hypervolume_history`).
* `trial_handle`, `trial_state`, `fail_trial`: an Optuna trial by number. The public API tells a
  trial by number (`Study.tell(number, ...)`) but sets user attributes only through the `Trial`
  object of the process that asked it; a driver restored after a kill holds none.
* `searched_only`: a sampler that sees the study without its baseline and replicate trials
  (Optuna's samplers read trials through ``Study._get_trials``; no public hook filters them).
* `stored_trial`: one trial by number, read alone (the public API reads every trial of a study).

Importing this module imports no Optuna: `compute_hypervolume` loads on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compute_hypervolume", "trial_handle", "trial_state", "fail_trial", "searched_only", "stored_trial"]  # noqa: F822 (compute_hypervolume: module __getattr__, lazy)


def __getattr__(name: str) -> Any:
    # Optuna's exact hypervolume, imported when first asked for (``optuna._hypervolume`` imports
    # Optuna, about 0.4 s, which the CLI's read commands do without).
    if name == "compute_hypervolume":
        from optuna._hypervolume import compute_hypervolume

        globals()[name] = compute_hypervolume
        return compute_hypervolume
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _trial_id(study: Any, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def trial_handle(study: Any, number: int) -> Any:
    """An `optuna.Trial` for trial ``number`` of ``study`` (to set its user attributes)."""
    import optuna

    return optuna.trial.Trial(study, _trial_id(study, number))


def trial_state(study: Any, number: int) -> Any:
    """The `TrialState` of trial ``number`` as the storage holds it now."""
    return study._storage.get_trial(_trial_id(study, number)).state


def fail_trial(study: Any, number: int) -> None:
    """Mark trial ``number`` FAIL whatever its state (a WAITING trial cannot be told)."""
    from optuna.trial import TrialState

    study._storage.set_trial_state_values(_trial_id(study, number), TrialState.FAIL)


class _SearchedTrialsView:
    """A study as its sampler should see it: without the baseline and replicate trials (replicates
    repeat a config with other model seeds: they are no new configs). Baselines have no
    sampled params (the dense point lies outside the space), and a relative sampler's search space
    is the intersection over completed trials: with them in view it is empty, and GP, NSGA-II and
    multivariate TPE silently fall back to independent (random or univariate) sampling."""

    def __init__(self, study: Any) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        from sweeps.search.record import is_searched

        return [t for t in trials if is_searched(t)]

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list:
        return self.get_trials()


def searched_only(sampler: Any) -> Any:
    """``sampler`` seeing each study through `_SearchedTrialsView` (baselines and replicates hidden)."""
    import optuna

    class SearchedOnlySampler(optuna.samplers.BaseSampler):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __str__(self) -> str:
            return f"{type(self.inner).__name__} (baselines and replicates hidden)"

        def infer_relative_search_space(self, study, trial):
            return self.inner.infer_relative_search_space(_SearchedTrialsView(study), trial)

        def sample_relative(self, study, trial, search_space):
            return self.inner.sample_relative(_SearchedTrialsView(study), trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.inner.sample_independent(_SearchedTrialsView(study), trial, param_name, param_distribution)

        def before_trial(self, study, trial):
            self.inner.before_trial(_SearchedTrialsView(study), trial)

        def after_trial(self, study, trial, state, values):
            self.inner.after_trial(_SearchedTrialsView(study), trial, state, values)

        def reseed_rng(self) -> None:
            self.inner.reseed_rng()

    return SearchedOnlySampler(sampler)


def stored_trial(study: Any, number: int) -> Any:
    """Trial ``number`` of ``study`` as the storage holds it now (a `FrozenTrial`), None when the
    study has no such trial. One trial is read: ``Study.get_trials`` reads them all, and a worker
    that asks this for every trial it runs would pay for the whole study each time."""
    try:
        return study._storage.get_trial(_trial_id(study, number))
    except KeyError:
        return None
