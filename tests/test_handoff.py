"""The hand-off formats and their checks: ONNX graphs that match PyTorch in onnxruntime (any batch
size), safetensors weights (and older weights.pt exports) checked against the network description
before anything is built, a size cap, the model card's sha256 values, and a registry that loads
what it registers through the safe loader first (a planted pickle is refused, never run)."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import time
from pathlib import Path

import mlflow
import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from mlflow.entities import LoggedModelOutput
from mlflow.tracking import MlflowClient
from torch import nn

from sparsity import ConvLayer, KWinnersSettings, LinearLayer, NetworkSpec, build_network, preset
from sparsity.data.mnist import mnist_featurize
from sparsity.handoff import (MAX_MODEL_BYTES_ENV, ModelSizeError, WeightsMismatchError, load_weights, save_weights,
                              state_layout)
from sparsity.onnx_export import OnnxExportError, to_onnx
from sweeps.results import deploy
from sweeps.tracking import models
from sweeps.tracking import runs as tracking

from fake_store import build_store
from sweep_helpers import run_cli

MNIST_CLASSES = tuple(str(d) for d in range(10))


def _with_state(model: nn.Module, seed: int) -> nn.Module:
    """Give every k-winners layer uneven duty cycles and a boost strength, as training leaves them,
    so that boosting changes the winners; then eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "duty_cycle"):
            m.duty_cycle.copy_(torch.rand(m.duty_cycle.shape, generator=g) * 0.3)
            m.boost_strength.fill_(1.2)
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


SMALL = {
    "dense": NetworkSpec((1, 28, 28), 10, conv=(ConvLayer(4, pool=2),), linear=(LinearLayer(16),), name="dense"),
    "global": NetworkSpec((1, 28, 28), 10, conv=(ConvLayer(6, percent_on=0.2),), linear=(LinearLayer(20, percent_on=0.3),),
                          name="global"),
    "local": NetworkSpec((1, 28, 28), 10, conv=(ConvLayer(8, percent_on=0.25, local=True),),
                         linear=(LinearLayer(20, percent_on=0.3),), name="local"),
    "sparse-weights": NetworkSpec((1, 28, 28), 10, conv=(ConvLayer(6, percent_on=0.2, weight_density=0.5),),
                                  linear=(LinearLayer(24, percent_on=0.25, weight_density=0.3),), batch_norm=True,
                                  name="sparse-weights"),
    "ties": NetworkSpec((1, 28, 28), 10, linear=(LinearLayer(30, percent_on=0.2, dropout=0.1),),
                        kwinners=KWinnersSettings(break_ties=True), name="ties"),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_onnx_matches_pytorch_at_batch_sizes_1_and_7(name, tmp_path):
    model = _with_state(build_network(SMALL[name], seed=1), seed=2)
    path = to_onnx(model, tmp_path / "m.onnx", dataset="mnist", classes=MNIST_CLASSES)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    assert inp.name == "pixels" and not isinstance(inp.shape[0], int)  # a named, dynamic batch axis
    pixels = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(mnist_featurize(pixels)).numpy()  # PyTorch takes normalised pixels
    for batch in (1, 7):
        got = session.run(None, {"pixels": pixels[:batch].numpy()})[0]
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, expected[:batch], rtol=1e-4, atol=1e-5)
        assert (got.argmax(1) == expected[:batch].argmax(1)).all()
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list(MNIST_CLASSES) and meta["dataset"] == "mnist"
    assert NetworkSpec.from_dict(json.loads(meta["network"])) == SMALL[name]
    assert "0.1307" in meta["preprocessing"] and "0.3081" in meta["preprocessing"]


def test_the_graph_keeps_k_inference_winners_and_frozen_boosting(tmp_path):
    """By hand on one 1-D layer: 20 units, percent_on 0.3 -> k 6, k_inference int(6 * 1.5) = 9; with the
    duty cycles set, the boosted ranking (not the raw one) decides, and exactly 9 units pass."""
    spec = NetworkSpec((1, 1, 20), 2, linear=(LinearLayer(20, percent_on=0.3),), name="one")
    model = build_network(spec, seed=0).eval()
    lin, act = model.hidden.linear1.linear, model.hidden.linear1.act
    with torch.no_grad():
        lin.weight.copy_(torch.eye(20))
        lin.bias.zero_()
        act.duty_cycle.copy_(torch.tensor([0.9] * 5 + [0.0] * 15))  # the first five fired far too often
        act.boost_strength.fill_(10.0)
        model.output.weight.copy_(torch.ones(2, 20) * torch.tensor([[1.0], [0.0]]))
        model.output.bias.zero_()
    x = torch.arange(20, 0, -1, dtype=torch.float32).view(1, 1, 1, 20) / 20  # unit 0 largest raw value
    path = to_onnx(model, tmp_path / "one.onnx", dataset="custom", classes=("a", "b"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    # boost exp((0.3 - d) * 10): units 0-4 get exp(-6), the rest exp(3): winners are units 5..13
    expected = float(sum(range(15, 6, -1))) / 20  # raw values of units 5..13: (20-5 .. 20-13) / 20
    assert got[0, 0] == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        assert float(model(x)[0, 0]) == pytest.approx(expected, rel=1e-6)


def test_gsc_graph_carries_the_featurizer_parameters(tmp_path):
    from sparsity.data.gsc import FEATURES, GSCFeaturizer

    spec = NetworkSpec((1, 32, 32), 12, conv=(ConvLayer(4, percent_on=0.3),), name="gsc-small")
    model = _with_state(build_network(spec, seed=0), seed=1)
    classes = tuple(f"c{i}" for i in range(12))
    feats = GSCFeaturizer(mean=-40.0, std=12.5)
    path = to_onnx(model, tmp_path / "g.onnx", dataset="gsc", classes=classes, featurizer=feats)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    params = json.loads(meta["featurizer"])
    assert params["n_fft"] == FEATURES["n_fft"] == 2048 and params["mean"] == -40.0 and params["std"] == 12.5
    assert "not in the graph" in meta["preprocessing"]
    log_mel = -80 * torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    got = session.run(None, {"log_mel": log_mel.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model((log_mel + 40.0) / 12.5).numpy(), rtol=1e-4, atol=1e-5)


def test_a_layer_that_cannot_export_is_one_line(tmp_path):
    model = build_network(SMALL["dense"], seed=0)
    model.hidden.linear1.add_module("odd", nn.GELU())
    with pytest.raises(OnnxExportError) as info:
        to_onnx(model, tmp_path / "x.onnx", dataset="mnist", classes=MNIST_CLASSES)
    msg = str(info.value)
    assert "\n" not in msg and "hidden.linear1.odd (GELU)" in msg and "cannot be exported to ONNX" in msg
    assert not (tmp_path / "x.onnx").exists()


# -- weights on disk -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_state_layout_is_what_the_builder_makes(name):
    built = build_network(SMALL[name], seed=0).state_dict()
    assert state_layout(SMALL[name]) == {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in built.items()}


def test_safetensors_round_trip_and_old_weights_pt_exports(tmp_path):
    spec = SMALL["sparse-weights"]
    model = _with_state(build_network(spec, seed=4), seed=5)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
    new, old = tmp_path / "new", tmp_path / "old"
    for folder in (new, old):
        folder.mkdir()
        (folder / "config.yaml").write_text(yaml.safe_dump({"network": spec.to_dict(), "seed": 99}))
    save_weights(model, new / "weights.safetensors")
    torch.save(model.state_dict(), old / "weights.pt")  # what exports wrote before safetensors
    from safetensors import safe_open

    with safe_open(str(new / "weights.safetensors"), "pt") as f:  # a plain safetensors file
        assert set(f.keys()) == set(model.state_dict())
    for folder in (new, old):
        loaded = deploy.load_model(folder)  # seed 99 draws other masks: the file's masks must win
        with torch.no_grad():
            assert torch.equal(loaded(x), expected)


def test_weights_that_do_not_fit_the_description_are_refused_before_building(tmp_path, monkeypatch):
    spec = SMALL["global"]
    other = spec.replace(linear=(LinearLayer(21, percent_on=0.3),))
    save_weights(build_network(other, seed=0), tmp_path / "w.safetensors")
    torch.save(build_network(other, seed=0).state_dict(), tmp_path / "w.pt")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"network": spec.to_dict()}))
    (tmp_path / "weights.safetensors").write_bytes((tmp_path / "w.safetensors").read_bytes())
    monkeypatch.setattr(deploy, "build_network", _never_built)
    for path in (tmp_path / "w.safetensors", tmp_path / "w.pt"):
        with pytest.raises(WeightsMismatchError) as info:
            load_weights(path, spec)
        msg = str(info.value)
        assert "\n" not in msg and "hidden.linear1.linear.weight is float32[21, 864]" in msg and "[20, 864]" in msg
    with pytest.raises(WeightsMismatchError):
        deploy.load_model(tmp_path)
    state = build_network(spec, seed=0).state_dict()
    state["extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(WeightsMismatchError, match="unexpected extra"):
        load_weights(tmp_path / "w.pt", spec)


def _never_built(*args, **kwargs):
    raise AssertionError("a network was built before its description and weights were checked")


def _huge() -> NetworkSpec:
    """A description worth about 596 TiB of float32 weights: 784 inputs x 2.06e11 hidden units."""
    return NetworkSpec((1, 28, 28), 10, linear=(LinearLayer(206_000_000_000),), name="huge")


def test_a_huge_description_is_refused_by_the_size_cap_before_building(tmp_path, monkeypatch):
    spec = _huge()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"network": spec.to_dict()}))
    save_weights(build_network(SMALL["dense"]), tmp_path / "weights.safetensors")
    monkeypatch.setattr(deploy, "build_network", _never_built)
    t0 = time.monotonic()
    with pytest.raises(ModelSizeError) as info:
        deploy.load_model(tmp_path)
    assert time.monotonic() - t0 < 1.5
    msg = str(info.value)
    assert "\n" not in msg and re.search(r"59\d\.\d TiB", msg) and "4.0 GiB cap" in msg and MAX_MODEL_BYTES_ENV in msg
    # The cap is a setting: a small one refuses a small network too, naming it.
    save_weights(build_network(SMALL["dense"]), tmp_path / "weights.safetensors")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"network": SMALL["dense"].to_dict()}))
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "1000")
    with pytest.raises(ModelSizeError, match="over the 1,000 B cap"):
        deploy.load_model(tmp_path)
    monkeypatch.setenv(MAX_MODEL_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_MODEL_BYTES_ENV):
        deploy.load_model(tmp_path)


# -- the CLI: export and register on a store -----------------------------------------------------


class _Payload(nn.Module):
    """A module whose unpickling creates a file: proof that code from the store ran."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = str(marker)

    def forward(self, x):  # pragma: no cover (never called)
        return x

    def __reduce_ex__(self, protocol):
        return (Path.touch, (Path(self.marker),))


def _store(tmp_path: Path, name: str, *, planted: Path | None = None) -> tuple[Path, str, nn.Module | None]:
    """A fake sweep store whose 6 trials' MLflow runs all point at one model: this project's (a small
    trained-state Sparse CNN-2) or, with ``planted``, a pickled one whose loading touches that file."""
    root = build_store(tmp_path / "store", name, trials=6)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = tracking.experiment_id(client, name, (root / "mlartifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    model = None
    try:
        model_id = None
        for number in range(6):
            run = client.create_run(exp, tags={tracking.TAG_SWEEP: name, tracking.TAG_KIND: "trial",
                                              tracking.TAG_OPTUNA: str(number)})
            if model_id is None and planted is not None:
                from mlflow import pytorch as mlflow_pytorch

                with mlflow.start_run(run_id=run.info.run_id):
                    model_id = mlflow_pytorch.log_model(_Payload(planted), name="model", serialization_format="pickle",
                                                        pip_requirements=[]).model_id
            elif model_id is None:
                network = preset("sparse-cnn2", "mnist")
                model = _with_state(build_network(network, seed=0), seed=1)
                model_id = models.log_model(model, network, run.info.run_id)
            else:
                client.log_outputs(run.info.run_id, [LoggedModelOutput(model_id, step=0)])
    finally:
        mlflow.set_tracking_uri(None)
    return root, uri, model


def test_sweeps_best_register_refuses_a_planted_pickle(tmp_path):
    marker = tmp_path / "payload-ran"
    root, uri, _ = _store(tmp_path, "planted", planted=marker)
    out = tmp_path / "best.yaml"
    proc = run_cli(["best", "planted", "--root", str(root), "--register", "evil", "--out", str(out)], cwd=tmp_path,
                   timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip() and "Downloading artifacts" not in line]
    assert len(lines) == 1 and "refused: not a model this project logged" in lines[0], text
    assert not marker.exists(), "the planted model's pickle payload ran"
    assert not out.exists()  # nothing written
    assert MlflowClient(uri).search_registered_models() == []  # nothing registered
    # The check itself, in process: the refusal comes within 10 s and registers nothing either.
    from sweeps.results.read import saved_spec

    spec = saved_spec("planted", str(root))
    t0 = time.monotonic()
    try:
        with pytest.raises(models.UnsafeModelError, match="refused: not a model this project logged"):
            deploy.register(spec, 0, "evil", {"data": {"name": "mnist"}, "source": {}})
    finally:
        mlflow.set_tracking_uri(None)
    assert time.monotonic() - t0 < 10
    assert not marker.exists() and MlflowClient(uri).search_registered_models() == []


def _forbid_unpickling(monkeypatch):
    import cloudpickle

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for name in ("load", "loads"):
        monkeypatch.setattr(cloudpickle, name, refuse)


def test_register_then_mlflow_onnx_loads_it_without_pickle(tmp_path, monkeypatch):
    root, uri, model = _store(tmp_path, "good")
    proc = run_cli(["best", "good", "--root", str(root), "--register", "net", "--out", str(tmp_path / "b.yaml")],
                   cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "models:/net@champion" in proc.stdout
    monkeypatch.setenv(models.PICKLE_SWITCH, "false")  # MLflow's own switch: its loaders must not need pickle
    _forbid_unpickling(monkeypatch)
    mlflow.set_tracking_uri(uri)
    try:
        from mlflow import onnx as mlflow_onnx

        proto = mlflow_onnx.load_model("models:/net@champion")  # MLflow's API, no project code
        info = mlflow.models.get_model_info("models:/net@champion")
        assert {"onnx", "python_function", models.FLAVOR} <= set(info.flavors)
        pyfunc = mlflow.pyfunc.load_model("models:/net@champion")  # onnxruntime underneath
        ours = deploy.load_model("models:/net@champion")
    finally:
        mlflow.set_tracking_uri(None)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    got = session.run(None, {"pixels": pixels.numpy()})[0]
    with torch.no_grad():
        expected = model.eval()(mnist_featurize(pixels)).numpy()
        assert torch.equal(ours(mnist_featurize(pixels)), torch.from_numpy(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    served = pyfunc.predict(pixels.numpy())  # as the docs show it: a dict of the graph's outputs
    np.testing.assert_allclose(served["logits"], expected, rtol=1e-4, atol=1e-5)
    assert json.loads({p.key: p.value for p in proto.metadata_props}["classes"]) == list(MNIST_CLASSES)


def test_sweeps_export_onnx_writes_the_formats_and_their_sha256(tmp_path):
    root, _, model = _store(tmp_path, "exp")
    out = tmp_path / "export"
    proc = run_cli(["export", "exp", "--root", str(root), "--out", str(out), "--format", "onnx"], cwd=tmp_path,
                   timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} == {"config.yaml", "weights.safetensors", "model.onnx", "MODEL_CARD.md"}
    card = (out / "MODEL_CARD.md").read_text()
    hashes = dict(re.findall(r"^\| (\S+) \| .* \| ([0-9a-f]{64}) \|$", card, flags=re.M))
    assert set(hashes) == {"config.yaml", "weights.safetensors", "model.onnx"}
    for name, digest in hashes.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert "onnxruntime" in card and "safetensors.numpy" in card
    pixels = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(mnist_featurize(pixels))
        assert torch.equal(deploy.load_model(out)(mnist_featurize(pixels)), expected)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"pixels": pixels.numpy()})[0], expected.numpy(), rtol=1e-4, atol=1e-5)


def _tamper_network(uri: str, root: Path, name: str, network: dict) -> None:
    """Rewrite the stored network.json of the model the trials point at (whoever can write the bucket)."""
    client = MlflowClient(uri)
    [model] = client.search_logged_models(experiment_ids=[client.get_experiment_by_name(name).experiment_id])
    stored = Path(model.artifact_location.removeprefix("file://")) / models.NETWORK
    assert stored.is_file()
    stored.write_text(json.dumps(network))


@pytest.mark.parametrize("case", ["huge", "mismatch"])
def test_sweeps_export_refuses_a_tampered_description_in_one_line(tmp_path, case):
    root, uri, _ = _store(tmp_path, "tampered")
    network = _huge() if case == "huge" else preset("sparse-cnn2", "mnist").replace(linear=(LinearLayer(301, percent_on=0.1),))
    _tamper_network(uri, root, "tampered", network.to_dict())
    out = tmp_path / "export"
    proc = run_cli(["export", "tampered", "--root", str(root), "--out", str(out)], cwd=tmp_path, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip() and "Downloading artifacts" not in line]
    assert len(lines) == 1, text
    if case == "huge":
        assert "TiB" in lines[0] and MAX_MODEL_BYTES_ENV in lines[0], text
    else:
        assert "hidden.linear1.linear.weight" in lines[0] and "does not fit" not in lines[0], text
    assert not out.exists()


def test_an_export_that_fails_midway_writes_nothing(tmp_path, monkeypatch):
    """The ONNX step refusing (a layer without an ONNX form): one line, and no folder at all."""
    import sparsity.onnx_export

    root, _, _ = _store(tmp_path, "halfway")
    from sweeps.results.best import best_config, choose
    from sweeps.results.read import config_summaries, sweep_status

    spec, trials, front = sweep_status("halfway", str(root))
    trial = choose(front)
    doc = best_config(spec, trial, "knee", config_summaries(trials))

    def refuse(model, *args, **kwargs):
        raise OnnxExportError("layer x (Odd): cannot be exported to ONNX")

    monkeypatch.setattr(sparsity.onnx_export, "to_onnx", refuse)
    out = tmp_path / "export"
    try:
        with pytest.raises(OnnxExportError):
            deploy.export(spec, trial.number, doc, out, None, formats=("safetensors", "onnx"))
    finally:
        mlflow.set_tracking_uri(None)
    assert not out.exists()
