"""The training loop and one experiment on real MNIST subsets: accuracy, determinism, resume, NaN."""

from __future__ import annotations

import json

import pytest
import torch

from sparsity import LinearLayer, preset
from sparsity.data import DataConfig, load_dataset
from sparsity.experiment import paper_experiment, run_experiment
from sparsity.recipe import Recipe, paper_recipe
from sparsity.train import NonFiniteLossError, train

from sweep_helpers import run_cli


@pytest.fixture(scope="module")
def mnist(data_dir):
    return load_dataset(DataConfig(name="mnist", train_limit=3000, eval_limit=1000))


def _comparable(history):
    return [{k: v for k, v in h.to_dict().items() if k not in ("seconds", "samples_per_second")} for h in history]


def test_tiny_run_reaches_a_stated_accuracy(mnist):
    recipe = paper_recipe("sparse-mlp").replace(epochs=2)
    result = train(preset("sparse-mlp"), recipe, mnist, seed=0)
    assert result.final.val_accuracy >= 0.70  # 3,000 images, 2 epochs (measured: 0.74)
    assert result.history[1].boost_strength == pytest.approx(1.5 * 0.85**2)  # decayed once per epoch
    assert result.history[1].lr == pytest.approx(0.01 * 0.8)  # StepLR, step 1 epoch


def test_same_seed_same_numbers_other_seed_other_numbers(mnist):
    recipe = Recipe(epochs=1, lr=0.02, batch_size=64, first_epoch_batch_size=32)
    a = train(preset("sparse-mlp"), recipe, mnist, seed=3)
    b = train(preset("sparse-mlp"), recipe, mnist, seed=3)
    c = train(preset("sparse-mlp"), recipe, mnist, seed=4)
    assert _comparable(a.history) == _comparable(b.history)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert _comparable(a.history) != _comparable(c.history)


def test_deterministic_setting_is_scoped_to_the_run_and_read_from_the_environment(mnist, monkeypatch):
    from sparsity.errors import UserError
    from sparsity.train import DETERMINISTIC_ENV

    seen = []

    def record(_result, _model):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark))

    recipe = Recipe(epochs=1, lr=0.02, batch_size=64)
    small = mnist.__class__(**{**mnist.__dict__, "train": mnist.train.head(500), "validation": mnist.validation.head(100)})
    plain = train(preset("sparse-mlp"), recipe, small, seed=1, on_epoch=record)
    strict = train(preset("sparse-mlp"), recipe, small, seed=1, on_epoch=record, deterministic=True)
    monkeypatch.setenv(DETERMINISTIC_ENV, "1")
    from_env = train(preset("sparse-mlp"), recipe, small, seed=1, on_epoch=record)
    assert seen == [(False, torch.backends.cudnn.benchmark), (True, False), (True, False)]
    assert not torch.are_deterministic_algorithms_enabled()  # restored after each run
    # on the CPU the numbers were already deterministic: the setting does not change them
    for other in (strict, from_env):
        assert _comparable(other.history) == _comparable(plain.history)
        for (k, va), vb in zip(plain.model.state_dict().items(), other.model.state_dict().values()):
            assert torch.equal(va, vb), k
    monkeypatch.setenv(DETERMINISTIC_ENV, "maybe")
    with pytest.raises(UserError, match=f"{DETERMINISTIC_ENV}='maybe': set it to 1"):
        train(preset("sparse-mlp"), recipe, small, seed=1)


@pytest.mark.parametrize("network", ["mlp-with-dropout", "sparse-cnn1"])  # the conv net trains channels-last
def test_resumed_run_equals_an_uninterrupted_one(mnist, tmp_path, network):
    if network == "sparse-cnn1":
        spec = preset("sparse-cnn1")
    else:
        spec = preset("sparse-mlp").replace(
            linear=(LinearLayer(units=200, percent_on=0.1, weight_density=0.3, dropout=0.25),))
    recipe = Recipe(epochs=3, lr=0.02, momentum=0.5, batch_size=64, first_epoch_batch_size=16)
    whole = train(spec, recipe, mnist, seed=1)

    ckpt = tmp_path / "run.pt"

    class Stop(Exception):
        pass

    def stop_after_two(result, _model):
        if result.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(spec, recipe, mnist, seed=1, checkpoint_path=ckpt, on_epoch=stop_after_two)
    resumed = train(spec, recipe, mnist, seed=1, checkpoint_path=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert _comparable(resumed.history) == _comparable(whole.history)
    for (k, va), vb in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(va, vb), k  # weights, duty cycles, boost strength, sample counters


def test_checkpoint_of_another_config_is_refused(mnist, tmp_path):
    ckpt = tmp_path / "run.pt"
    recipe = Recipe(epochs=1, batch_size=128)
    train(preset("dense-mlp"), recipe, mnist, seed=0, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="different recipe"):
        train(preset("dense-mlp"), recipe.replace(lr=0.5), mnist, seed=0, checkpoint_path=ckpt)


def test_nan_loss_fails_with_the_epoch_and_the_fix(mnist):
    with pytest.raises(NonFiniteLossError, match=r"epoch 1.*lower recipe.lr"):
        train(preset("dense-mlp"), Recipe(epochs=1, lr=1.0e6, momentum=0.9), mnist, seed=0)


def test_network_and_dataset_must_match(mnist):
    with pytest.raises(ValueError, match="use a preset built for 'mnist'"):
        train(preset("sparse-cnn2", "gsc"), Recipe(epochs=1), mnist)


def test_experiment_scores_validation_and_test_noise(data_dir):
    config = paper_experiment("sparse-mlp", "mnist", epochs=1,
                              data=DataConfig(name="mnist", train_limit=1000, eval_limit=300))
    result = run_experiment(config)
    summary = result.summary()
    assert summary["val_noise_score"] == sum(result.validation_curve.correct)
    assert result.validation_curve.accuracies[0] == pytest.approx(result.val_accuracy)
    assert result.test_curve.accuracies[0] == pytest.approx(result.test_accuracy)
    assert len(result.test_curve.levels) == 11 and result.test_curve.total == 300
    json.dumps(summary)  # JSON-ready


def test_sweeps_train_cli_prints_the_curve_and_writes_json(tmp_path, data_dir):
    out = tmp_path / "result.json"
    proc = run_cli(["train", "--preset", "sparse-mlp", "--dataset", "mnist", "--epochs", "1", "--train-limit", "800",
                    "--eval-limit", "200", "--out", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "noise curve (mnist-pixels)" in proc.stdout and "noise score" in proc.stdout
    summary = json.loads(out.read_text())
    assert summary["network"] == "sparse-mlp" and len(summary["test_curve"]["accuracies"]) == 11
    bad = run_cli(["train", "--preset", "sparse-cnn7"], cwd=tmp_path)
    assert bad.returncode == 2 and "preset='sparse-cnn7'" in bad.stdout


def test_paper_protocol_trains_on_everything_and_scores_the_test_set_only(tmp_path, data_dir):
    """validation_size 0 (the paper's `validation = 1.0`): no validation split, no validation
    numbers, the test set scored; `sweeps train --validation-size 0` says so and writes nulls."""
    data = DataConfig(name="mnist", validation_size=0, train_limit=2000, eval_limit=200)
    result = run_experiment(paper_experiment("dense-mlp", "mnist", epochs=1, data=data))
    summary = result.summary()
    assert result.validation_curve is None and summary["val_accuracy"] is None and summary["val_noise_score"] is None
    assert result.history[0].val_loss is None and result.test_curve.total == 200 and summary["test_accuracy"] > 0.6
    with pytest.raises(ValueError, match="no validation split and evaluate_test is off"):
        paper_experiment("sparse-mlp", "mnist", data=data).__class__(
            network=preset("sparse-mlp"), recipe=paper_recipe("sparse-mlp"), data=data, evaluate_test=False)

    out = tmp_path / "paper.json"
    proc = run_cli(["train", "--preset", "sparse-mlp", "--epochs", "1", "--train-limit", "800", "--eval-limit", "200",
                    "--validation-size", "0", "--out", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no validation split: training on all 60,000 images" in proc.stdout and "validation" not in proc.stdout.split(
        "noise curve")[1].split("scores")[0]
    saved = json.loads(out.read_text())
    assert saved["val_accuracy"] is None and saved["config"]["data"]["validation_size"] == 0
    bad = run_cli(["train", "--preset", "sparse-cnn2", "--dataset", "gsc", "--validation-size", "0"], cwd=tmp_path)
    assert bad.returncode == 2 and "--validation-size applies to mnist only" in bad.stdout


class _Payload:
    """Unpickling this creates a file: proof that code from a checkpoint ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_not_run(mnist, tmp_path):
    from sparsity.train import UnsafeCheckpointError

    ckpt, marker = tmp_path / "run.pt", tmp_path / "payload-ran"
    recipe = Recipe(epochs=1, batch_size=128)
    train(preset("dense-mlp"), recipe, mnist, seed=0, checkpoint_path=ckpt)
    state = torch.load(ckpt, weights_only=True)  # a genuine checkpoint is tensors, numbers, lists, dicts
    state["history"].append(_Payload(marker))  # what a tampered checkpoint in shared storage could hold
    torch.save(state, ckpt)
    with pytest.raises(UnsafeCheckpointError, match=r"run\.pt: refused to load it.*could run code"):
        train(preset("dense-mlp"), recipe.replace(epochs=2), mnist, seed=0, checkpoint_path=ckpt)
    assert not marker.exists(), "the checkpoint's pickle payload was executed"


def test_exported_weights_carrying_a_pickle_payload_are_refused(tmp_path):
    import yaml

    from sparsity import build_network
    from sparsity.train import UnsafeCheckpointError
    from sweeps.results.deploy import load_model

    spec, marker = preset("sparse-mlp"), tmp_path / "payload-ran"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"network": spec.to_dict(), "seed": 0}))
    weights = build_network(spec, seed=0).state_dict()
    weights["extra"] = _Payload(marker)
    torch.save(weights, tmp_path / "weights.pt")
    with pytest.raises(UnsafeCheckpointError, match="weights.pt: refused to load it"):
        load_model(tmp_path)
    assert not marker.exists()
