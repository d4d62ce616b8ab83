"""The private library internals in `sweeps/internals.py`: each test fails loudly when the library
changes what the adapter relies on (a moved module, a renamed method, a changed signature)."""

from __future__ import annotations

import inspect

import numpy as np
import optuna
import pytest

from sweeps import internals

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_optuna_hypervolume_is_where_we_take_it_from():
    # Minimization with reference (1, 1): two boxes of 0.5 x 0.25 and 0.25 x 0.5, overlapping
    # in 0.25 x 0.25 -> 0.125 + 0.125 - 0.0625.
    points = np.array([[0.5, 0.75], [0.75, 0.5]])
    assert internals.compute_hypervolume(points, np.array([1.0, 1.0])) == pytest.approx(0.1875)


def test_storage_methods_the_adapter_calls_exist():
    storage = optuna.storages.InMemoryStorage()
    for name in ("get_trial_id_from_study_id_trial_number", "get_trial", "set_trial_state_values"):
        assert callable(getattr(storage, name, None)), f"optuna storages lost {name}"
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    assert isinstance(study._study_id, int) and study._storage is storage


def test_trial_by_number_state_and_fail():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.ask()
    second = study.ask()
    handle = internals.trial_handle(study, second.number)
    handle.set_user_attr("seen", True)
    assert study.trials[1].user_attrs == {"seen": True}
    assert internals.trial_state(study, 1) == optuna.trial.TrialState.RUNNING
    internals.fail_trial(study, 1)
    assert internals.trial_state(study, 1) == optuna.trial.TrialState.FAIL
    assert internals.trial_state(study, 0) == optuna.trial.TrialState.RUNNING


def test_study_get_trials_keeps_the_signature_the_view_overrides():
    params = inspect.signature(optuna.Study._get_trials).parameters
    assert list(params)[1:] == ["deepcopy", "states", "use_cache"], list(params)


def _study_with_baselines(sampler) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for value in (0.9, 0.8):  # baselines: no params, outside the space
        t = study.ask()
        t.set_user_attr("baseline", f"b{value}")
        study.tell(t, [value, 1.0])
    rng = np.random.default_rng(0)
    for _ in range(8):
        t = study.ask({"x": optuna.distributions.FloatDistribution(0, 1),
                       "y": optuna.distributions.FloatDistribution(0, 1)})
        study.tell(t, [float(rng.random()), float(rng.random())])
    return study


@pytest.mark.parametrize("make", [
    lambda: optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=2),
    lambda: optuna.samplers.GPSampler(seed=0, n_startup_trials=2),
], ids=["tpe-mv", "gp"])
def test_relative_samplers_see_a_search_space_only_with_baselines_hidden(make):
    """Why the view exists: Optuna intersects the space over all complete trials, baselines too."""
    bare = make()
    study = _study_with_baselines(bare)
    probe = study.ask()
    assert bare.infer_relative_search_space(study, probe) == {}, "Optuna no longer intersects over baselines"
    wrapped = internals.searched_only(make())
    assert set(wrapped.infer_relative_search_space(study, probe)) == {"x", "y"}


def test_view_hides_baselines_from_every_read():
    study = _study_with_baselines(optuna.samplers.RandomSampler(seed=0))
    view = internals._SearchedTrialsView(study)
    assert len(study.trials) == 10
    assert len(view.trials) == len(view.get_trials()) == len(view._get_trials(deepcopy=False)) == 8
    assert view.directions == study.directions
