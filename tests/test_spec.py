"""Sweep specs: validated before anything starts, with errors that name the key and the fix."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from sparsity import build_network
from sweeps.errors import NoFinishedTrialsError, TrackingUnreachableError
from sweeps.results.best import choose, knee_index
from sweeps.search.space import apply_params
from sweeps.spec import SpecError, SweepSpec, Stores, load_spec, spec_preset_names
from sweeps.tracking.runs import check_reachable

from sweep_helpers import tiny_spec


def spec_with(**changes):
    data = tiny_spec("spec-test")
    for key, value in changes.items():
        data[key] = value
    return data


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"colour": "blue"}, "unknown key(s) ['colour']"),
        ({"space": {"percent_on": {"low": 0.5, "high": 0.1}}}, "space.percent_on.low"),
        ({"space": {"percent_on": {"low": 0.0, "high": 0.5, "log": True}}}, "space.percent_on.low"),
        ({"space": {"percent_on": {"low": 0.0001, "high": 0.5}}}, "k=0"),
        ({"space": {"weight_density": {"low": 0.5, "high": 1.5}}}, "space.weight_density"),
        ({"space": {"dropout.conv[0]": {"choices": [0.5]}}}, "space.dropout.conv[0]"),
        ({"space": {"percent_on.linear[5]": {"low": 0.1, "high": 0.2}}}, "has 2 linear layer(s)"),
        ({"space": {"momentum_of_doom": {"low": 0.1, "high": 0.2}}}, "unknown parameter"),
        ({"space": {"percent_on": {"low": 0.1, "high": 0.2, "step": 3}}}, "space.percent_on: unknown key(s) ['step']"),
        ({"network": "sparse-cnn9"}, "preset='sparse-cnn9'"),
        ({"dataset": {"name": "cifar"}}, "dataset: name='cifar'"),
        ({"budget": {"trials": -1}}, "budget.trials"),
        ({"resources": {"gpus": 1.5}}, "resources.gpus"),
        ({"searcher": {"algorithm": "grid"}}, "searcher.algorithm"),
        ({"early_stopping": {"metric": "val_noise_score"}}, "early_stopping.metric"),
        ({"objectives": {"noise": {"kind": "gsc-white"}}}, "objectives.noise.kind"),
        ({"recipe": {"lr": -1}}, "recipe.lr"),
        ({"baselines": [{"name": "dense", "params": {"percent_on": 0.00001}}]}, "baselines[0] (dense)"),
        ({"name": "has space"}, "name"),
    ],
)
def test_bad_specs_name_the_key(changes, key):
    with pytest.raises(SpecError) as err:
        SweepSpec.from_dict(spec_with(**changes))
    assert key in str(err.value)


def test_shipped_presets_load_and_round_trip():
    assert {"mnist-quick", "mnist-paper", "gsc-paper"} <= set(spec_preset_names())
    for name in spec_preset_names():
        spec = load_spec(name)
        again = SweepSpec.from_dict(yaml.safe_load(spec.to_yaml()))
        assert again == spec


def test_unknown_preset_or_missing_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="neither a spec file nor a preset"):
        load_spec("mnist-slow")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_dense_baseline_is_the_dense_point_of_the_same_network():
    spec = load_spec("mnist-paper")
    dense = spec.experiment({}, baseline=spec.baselines[0]).network
    assert dense.is_dense
    assert [l.channels for l in dense.conv] == [l.channels for l in spec.network.conv]  # matched width
    assert [l.units for l in dense.linear] == [l.units for l in spec.network.linear]
    dropout = spec.experiment({}, baseline=spec.baselines[1]).network
    assert dropout.linear[0].dropout == 0.5 and dropout.is_dense


def test_a_baseline_preset_brings_its_network_and_paper_recipe():
    """mnist-quick's baselines: the paper's Dense CNN-2 with its own recipe, at the sweep's budget."""
    from sparsity.recipe import paper_recipe

    spec = load_spec("mnist-quick")
    dense, params, name = spec.trial({"baseline": "dense"})  # as the service builds a baseline trial
    assert name == "dense" and params == {}  # the searched parameters (lr among them) are not applied
    assert dense.network.is_dense and [l.channels for l in dense.network.conv] == [30, 30]
    assert dense.network.linear[0].units == 1000 and dense.network.name == "dense-cnn2@dense"
    assert dense.recipe == paper_recipe("dense-cnn2", "mnist").replace(epochs=2)
    dropout, _, _ = spec.trial({"baseline": "dense-dropout"})
    assert dropout.network.linear[0].dropout == 0.5 and dropout.recipe == dense.recipe


def test_params_apply_shared_then_per_layer():
    spec = load_spec("mnist-paper")
    net, recipe = apply_params(
        spec.network, spec.recipe,
        {"percent_on": 0.2, "percent_on.linear[0]": 0.05, "weight_density": 0.5, "lr": 0.03, "boost_strength": 0.0},
    )
    assert [l.percent_on for l in net.conv] == [0.2, 0.2]
    assert net.linear[0].percent_on == 0.05
    assert [l.weight_density for l in net.conv] == [1.0, 1.0]  # conv weights stay dense
    assert net.linear[0].weight_density == 0.5
    assert recipe.lr == 0.03 and net.kwinners.boost_strength == 0.0
    build_network(net)  # and it builds


def test_local_only_stores_are_named():
    assert Stores(root="x").local_only() == ["stores.mlflow_tracking_uri", "stores.optuna_storage"]
    remote = Stores(mlflow_tracking_uri="http://mlflow:5000", optuna_storage="postgresql://u@db/optuna")
    assert remote.local_only() == []


def test_unreachable_tracking_server_is_named():
    with pytest.raises(TrackingUnreachableError, match="stores.mlflow_tracking_uri"):
        check_reachable("http://127.0.0.1:9", timeout=2)


def _t(number, acc, noise):
    return SimpleNamespace(number=number, values=[acc, noise], user_attrs={}, params={})


def test_best_rules():
    front = [_t(0, 0.99, 100), _t(1, 0.98, 160), _t(2, 0.90, 170)]
    assert choose(front).number == 1  # the knee
    assert choose(front, min_accuracy=0.95).number == 1
    assert choose(front, min_accuracy=0.85).number == 2
    with pytest.raises(SpecError, match="no Pareto config reaches it"):
        choose(front, min_accuracy=0.999)
    with pytest.raises(NoFinishedTrialsError, match="no finished trials"):
        choose([])
    assert knee_index([(0.5, 0.5)]) == 0
    assert knee_index([(0.9, 0.1), (0.8, 0.3)]) in (0, 1)
