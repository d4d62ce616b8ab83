"""The private library internals (`sweeps/search/optuna_private.py`, `sweeps/tracking/mlflow_private.py`) and the raw reader of Optuna's tables (`sweeps/stores/optuna_tables.py`): each test fails loudly when the library
changes what the adapter relies on (a moved module, a renamed method, a changed signature)."""

from __future__ import annotations

import inspect

import numpy as np
import optuna
import pytest

from sweeps.search import optuna_private as internals
from sweeps.stores import optuna_tables

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


def test_stored_trial_reads_one_trial_by_number():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.ask()
    t = study.ask()
    study.tell(t, [0.5, 2.0])
    got = internals.stored_trial(study, 1)
    assert got.number == 1 and got.values == [0.5, 2.0] and got.state == optuna.trial.TrialState.COMPLETE
    assert internals.stored_trial(study, 0).state == optuna.trial.TrialState.RUNNING
    assert internals.stored_trial(study, 7) is None


# -- Optuna's RDB schema, read without Optuna (`optuna_tables.read_trials`) --------------------------------

def _varied_study(url: str, name: str = "s") -> optuna.Study:
    """Every state, values with infinities, float/int/log/categorical params, nested user attrs."""
    study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "maximize"])
    other = optuna.create_study(study_name=name + "-other", storage=url, directions=["maximize", "maximize"])
    other.tell(other.ask(), [1.0, 1.0])  # a second study in the same store: never mixed in
    space = {"x": optuna.distributions.FloatDistribution(0.01, 1.0, log=True),
             "n": optuna.distributions.IntDistribution(1, 9),
             "c": optuna.distributions.CategoricalDistribution(["a", "b", None, 3])}
    for i in range(12):
        t = study.ask(space)
        t.set_user_attr("config", {"x": t.params["x"], "n": t.params["n"], "deep": [1, {"k": "v"}]})
        t.set_user_attr("val_curve", {"levels": [0.0, 0.5], "accuracies": [0.9, 0.5 + i / 100]})
        if i % 3 == 0:
            t.set_user_attr("baseline", f"b{i}")
        if i in (0, 1, 2, 3, 4, 5):
            study.tell(t, [0.5 + i / 100, float("inf") if i == 4 else 10.0 * i])
        elif i == 6:
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        elif i == 7:
            t.set_user_attr("fail_reason", "boom")
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        elif i == 8:
            study.tell(t, [float("-inf"), 1.0])
    study.enqueue_trial({"x": 0.5})  # WAITING
    return study


def _same(ours, theirs, attrs=None, params=True) -> None:
    assert [t.number for t in ours] == [t.number for t in theirs]
    for a, b in zip(ours, theirs):
        assert a.state.name == b.state.name and a.state.value == b.state.value, b.number
        assert a.values == b.values, b.number
        assert (a.datetime_start, a.datetime_complete) == (b.datetime_start, b.datetime_complete), b.number
        want = b.user_attrs if attrs is None else {k: v for k, v in b.user_attrs.items() if k in attrs}
        assert a.user_attrs == want, b.number
        if params:
            assert a.params == b.params and a.distributions == b.distributions, b.number
            assert list(a.params) == list(b.params), b.number  # the same order
        else:
            assert a.params == {}


def test_optuna_creates_the_schema_revision_read_trials_knows(tmp_path):
    import sqlite3

    optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    revision = sqlite3.connect(tmp_path / "o.db").execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision == [(optuna_tables.OPTUNA_SCHEMA_REVISION,)], (
        f"Optuna's RDB schema moved to {revision}: check read_trials' queries against "
        f"optuna/storages/_rdb/models.py, then update OPTUNA_SCHEMA_REVISION")
    assert {s.name: s.value for s in optuna_tables.StoredState} == {s.name: s.value for s in optuna.trial.TrialState}
    for s in optuna.trial.TrialState:
        assert optuna_tables.StoredState[s.name].is_finished() == s.is_finished()


def test_read_trials_equals_optunas_own_read(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = _varied_study(url)
    theirs = study.get_trials(deepcopy=False)
    assert {t.state.name for t in theirs} == {"COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"}
    _same(optuna_tables.read_trials(url, "s"), theirs)
    _same(optuna_tables.read_trials(url, "s", attrs=("baseline", "fail_reason"), params=False), theirs,
          attrs=("baseline", "fail_reason"), params=False)
    _same(optuna_tables.read_trials(url, "s", attrs=(), numbers=[2, 7, 99]), [t for t in theirs if t.number in (2, 7)],
          attrs=())
    assert optuna_tables.read_trials(url, "s", numbers=[]) == []
    assert optuna_tables.read_trials(url, "no-such-study") is None


def test_read_trials_writes_nothing_and_refuses_other_revisions(tmp_path):
    import sqlite3

    assert optuna_tables.read_trials(f"sqlite:///{tmp_path / 'missing.db'}", "s") is None
    assert not (tmp_path / "missing.db").exists()  # not created, as Optuna would
    (tmp_path / "empty.db").touch()  # no tables yet: Optuna's own read creates them
    with pytest.raises(optuna_tables.UnknownOptunaSchema):
        optuna_tables.read_trials(f"sqlite:///{tmp_path / 'empty.db'}", "s")
    url = f"sqlite:///{tmp_path / 'o.db'}"
    _varied_study(url)
    with sqlite3.connect(tmp_path / "o.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'v9.9.9.z'")
    with pytest.raises(optuna_tables.UnknownOptunaSchema, match="v9.9.9.z"):
        optuna_tables.read_trials(url, "s")


def test_read_trials_reads_postgresql_as_optuna_does(test_postgres, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", test_postgres.password)
    url = test_postgres.create_database("internals_read")
    study = _varied_study(url)
    _same(optuna_tables.read_trials(url, "s"), study.get_trials(deepcopy=False))
    assert optuna_tables.read_trials(url, "no-such-study") is None


def test_importing_the_adapter_imports_no_optuna():
    import subprocess
    import sys

    code = "import sys, sweeps.search.optuna_private; print('optuna' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


def test_mlflow_saves_an_input_example_where_the_adapter_takes_it_from(tmp_path):
    """`sweeps.tracking.mlflow_private.save_input_example` (``mlflow.models.utils._save_example``):
    it writes the example into the model folder and records it in the MLmodel."""
    from mlflow.models import Model

    from sweeps.tracking.mlflow_private import save_input_example

    model = Model()
    save_input_example(model, np.zeros((2, 3), dtype=np.float32), str(tmp_path))
    info = model.saved_input_example_info
    assert info is not None and info["type"] == "ndarray", info
    assert (tmp_path / info["artifact_path"]).is_file()


def test_mlflow_ui_still_reads_shared_views_the_way_shared_view_writes_them():
    """`sweeps.tracking.mlflow_private.shared_view`: the MLflow UI (its built JavaScript, shipped in
    the wheel) loads a view from the experiment tag ``mlflow.sharedViewState.<key>`` named by the
    URL's ``viewStateShareKey``, as JSON, picking these search facets and UI-state keys."""
    from pathlib import Path

    import mlflow

    from sweeps.tracking.mlflow_private import SHARED_VIEW_PARAM, SHARED_VIEW_TAG, shared_view

    build = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    bundle = "".join(p.read_text(errors="ignore") for p in build.glob("*.js"))
    assert f'"{SHARED_VIEW_TAG}"' in bundle and f'"{SHARED_VIEW_PARAM}"' in bundle, "MLflow's shared views moved"
    assert '["searchFilter","orderByKey","orderByAsc",' in bundle, "the runs page's search facets changed"
    view = shared_view("tags.x = 'y'", "m", ["m"], ["p"], ["t"])
    for key in ("selectedColumns", "columnOrder", "runsHiddenMode", "runListHidden", "viewMaximized"):
        assert key in view and f'"{key}"' in bundle, f"the runs page's UI state has no {key} any more"
    assert '"SHOW_ALL"' in bundle
    assert view["selectedColumns"] == ["metrics.`m`", "params.`p`", "tags.`t`"] and view["orderByKey"] == "metrics.`m`"


def test_mlflow_finds_a_request_auth_provider_the_adapter_registers(monkeypatch):
    """`sweeps.tracking.mlflow_private.register_request_auth`
    (``mlflow.tracking.request_auth.registry._request_auth_provider_registry``): a provider
    registered there is the one MLflow's REST client uses when $MLFLOW_TRACKING_AUTH names it."""
    from mlflow.tracking.request_auth.abstract_request_auth_provider import RequestAuthProvider
    from mlflow.tracking.request_auth.registry import fetch_auth
    from mlflow.utils.credentials import get_default_host_creds

    from sweeps.tracking.mlflow_private import register_request_auth

    marker = object()

    class Probe(RequestAuthProvider):
        def get_name(self):
            return "sweeps-internals-probe"

        def get_auth(self):
            return marker

    register_request_auth(Probe)
    register_request_auth(Probe)  # once only
    from mlflow.tracking.request_auth import registry

    assert sum(type(p) is Probe for p in registry._request_auth_provider_registry) == 1
    assert fetch_auth("sweeps-internals-probe") is marker
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "sweeps-internals-probe")
    assert get_default_host_creds("http://127.0.0.1:1").auth == "sweeps-internals-probe"  # what http_request fetches
