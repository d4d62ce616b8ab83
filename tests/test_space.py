"""The search-space grammar (sweeps.search.space) and the dataset facts (sparsity.facts)."""

from __future__ import annotations

import pytest

from sparsity import DataConfig, ExperimentConfig, NoiseConfig, preset
from sparsity.facts import DATASETS, NOISE_FACTS, dataset_facts, noise_facts
from sparsity.recipe import paper_recipe
from sweeps.search import space
from sweeps.spec import Param, SweepSpec, load_spec

from sweep_helpers import tiny_spec


@pytest.mark.parametrize(
    "name, home, attr, kind, index",
    [
        ("percent_on", "layers", "percent_on", None, None),
        ("percent_on.conv[1]", "layers", "percent_on", "conv", 1),
        ("weight_density.linear[0]", "layers", "weight_density", "linear", 0),
        ("dropout", "layers", "dropout", None, None),
        ("boost_strength", "kwinners", "boost_strength", None, None),
        ("lr", "recipe", "lr", None, None),
    ],
)
def test_a_name_parses_into_a_typed_target(name, home, attr, kind, index):
    t = space.parse(name)
    assert (t.name, t.home, t.attr, t.layer_kind, t.index) == (name, home, attr, kind, index)


@pytest.mark.parametrize("name, message", [("dropout.conv[0]", "linear layers only"), ("percent_off", "unknown parameter"),
                                           ("percent_on.conv[x]", "unknown parameter")])
def test_bad_names_are_refused_with_the_grammar(name, message):
    with pytest.raises(ValueError, match=message):
        space.parse(name)


def test_the_spec_parses_each_name_once_and_trials_apply_those_targets(monkeypatch):
    spec = SweepSpec.from_dict(tiny_spec("once"))
    assert [p.target for p in spec.space] == [space.parse(p.name) for p in spec.space]
    calls = []
    real = space.parse
    monkeypatch.setattr(space, "parse", lambda name: calls.append(name) or real(name))
    exp, params, baseline = spec.trial({"percent_on": 0.1, "weight_density": 0.5})
    assert calls == [] and baseline is None  # applied through the parsed targets
    assert [l.percent_on for l in exp.network.linear] == [0.1, 0.1]
    assert [l.weight_density for l in exp.network.linear] == [0.5, 0.5]


def test_values_are_checked_by_the_network_itself():
    net, recipe = preset("sparse-mlp"), paper_recipe("sparse-mlp")
    with pytest.raises(ValueError, match=r"linear\[0\].weight_density=1.5: must be in \(0, 1\]"):
        space.apply_params(net, recipe, {"weight_density": 1.5})
    with pytest.raises(ValueError, match=r"dropout=1.0: must be in \[0, 1\)"):
        space.apply_params(net, recipe, {"dropout": 1.0})
    with pytest.raises(ValueError, match="must be a number"):
        space.apply_params(net, recipe, {"lr": None})
    with pytest.raises(ValueError, match="has 2 linear layer"):
        space.apply_params(net, recipe, {"percent_on.linear[2]": 0.1})


def test_a_param_with_a_bad_name_is_refused_by_key():
    with pytest.raises(ValueError, match=r"space.bogus: unknown parameter"):
        Param(name="bogus", low=0.1, high=0.2)


def test_saved_specs_of_earlier_versions_keep_loading(tmp_path):
    """Earlier versions wrote `class_set: keywords` for every dataset; an MNIST spec with it loads."""
    data = tiny_spec("old")
    data["dataset"] = {**data["dataset"], "class_set": "keywords", "validation_size": 5000}
    spec = SweepSpec.from_dict(data)
    assert spec.dataset.class_set is None and "class_set" not in spec.to_dict()["dataset"]
    with pytest.raises(ValueError, match="one fixed set of classes"):
        DataConfig("mnist", class_set="digits")
    assert DataConfig("gsc").class_set == "keywords" and "validation_size" not in DataConfig("gsc").to_dict()


def test_dataset_facts_are_the_one_table():
    assert set(DATASETS) == {"mnist", "gsc"}
    mnist, gsc = dataset_facts("mnist"), dataset_facts("gsc")
    assert (mnist.input_shape, mnist.num_classes()) == ((1, 28, 28), 10)
    assert (gsc.input_shape, gsc.num_classes(), gsc.num_classes("digits")) == ((1, 32, 32), 12, 12)
    assert set(mnist.noise_kinds) == {k for k, f in NOISE_FACTS.items() if f.data == "image"}
    assert "gsc-white" in gsc.noise_kinds and "mnist-pixels" not in gsc.noise_kinds
    with pytest.raises(ValueError, match="applies to image data, not gsc"):
        gsc.check_noise("mnist-pixels")
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_facts("cifar")
    for d, facts in DATASETS.items():  # presets are built from the facts
        net = preset("dense-mlp", d)
        assert (net.input_shape, net.num_classes) == (facts.input_shape, facts.num_classes())


def test_experiment_configs_are_checked_against_the_facts():
    net, recipe = preset("sparse-mlp", "mnist"), paper_recipe("sparse-mlp", "mnist")
    with pytest.raises(ValueError, match="dataset 'gsc' gives"):
        ExperimentConfig(net, recipe, DataConfig("gsc"))
    with pytest.raises(ValueError, match="applies to audio data"):
        ExperimentConfig(net, recipe, DataConfig("mnist"), NoiseConfig(kind="audio-snr"))
    with pytest.raises(ValueError, match="must be a fraction"):
        NoiseConfig(kind="mnist-pixels", levels=(0.1, 2.0))
    assert noise_facts("audio-snr").is_clean(float("inf"))


def test_noise_kinds_take_their_facts_from_the_table():
    from sparsity.noise import NOISE_KINDS, get_noise

    assert set(NOISE_KINDS) == set(NOISE_FACTS)
    for name, kind in NOISE_KINDS.items():
        assert kind.facts is NOISE_FACTS[name] and kind.levels == NOISE_FACTS[name].levels
    with pytest.raises(ValueError, match="is unknown"):
        get_noise("pink")


def test_presets_round_trip_with_the_grammar():
    for name in ("mnist-quick", "mnist-paper", "gsc-paper"):
        spec = load_spec(name)
        again = SweepSpec.from_dict(spec.to_dict())
        assert again.to_dict() == spec.to_dict(), name
        assert [p.target for p in again.space] == [space.parse(p.name) for p in spec.space]
        assert spec.baselines, name
        for b in spec.baselines:
            exp, params, baseline = spec.trial({"baseline": b.name})
            assert baseline == b.name and exp.to_dict() == again.trial({"baseline": b.name})[0].to_dict()
