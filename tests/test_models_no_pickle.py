"""Nothing a store hands back runs code (issue 19, point 1): trial models are a state_dict and the
NetworkSpec that rebuilds them (`sweeps.tracking.models`), registered and aliased as before; a
pickled model planted in the registry or the artifact store is refused with one line and never
executed, by `load_model` and by `sweeps export`; and no path from `export`, `load_model`, `best`
or `resume` reaches an unpickling loader."""

from __future__ import annotations

import ast
import pickle
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.entities import LoggedModelOutput
from mlflow.tracking import MlflowClient

from sparsity import build_network, preset
from sweeps.tracking import models
from sweeps.tracking import runs as tracking

from fake_store import build_store
from sweep_helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


class _Payload(torch.nn.Module):
    """A module whose unpickling creates a file: proof that code from the store ran."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = str(marker)

    def forward(self, x):  # pragma: no cover (never called)
        return x

    def __reduce_ex__(self, protocol):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv(models.PICKLE_SWITCH, "true")  # MLflow's default; `load` turns it off (undone after)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.create_experiment("models", artifact_location=(tmp_path / "artifacts").as_uri())
    yield client, exp
    mlflow.set_tracking_uri(None)


def _plant_pickle(client, run_id: str, marker: Path) -> str:
    """What anyone who can write to the MLflow server can log: a pickled `pytorch` model."""
    from mlflow import pytorch as mlflow_pytorch

    with mlflow.start_run(run_id=run_id):
        info = mlflow_pytorch.log_model(_Payload(marker), name="model", serialization_format="pickle",
                                        pip_requirements=[])  # no inference: it would load the model
    assert not marker.exists()  # logging it ran nothing
    return info.model_id


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test on any unpickling loader: pickle's, cloudpickle's, torch.load without weights_only."""
    import cloudpickle

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for name in ("load", "loads"):
        monkeypatch.setattr(cloudpickle, name, refuse)
    real = torch.load

    def torch_load(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", torch_load)


def test_a_model_round_trips_through_the_registry_without_unpickling(store, no_unpickling, tmp_path):
    from sweeps.results.deploy import load_model

    client, exp = store
    run = client.create_run(exp)
    network = preset("sparse-mlp")
    trained = build_network(network, seed=3).eval()
    model_id = models.log_model(trained, network, run.info.run_id)
    assert [o.model_id for o in client.get_run(run.info.run_id).outputs.model_outputs] == [model_id]
    logged = client.get_logged_model(model_id)  # in the run's experiment, under its artifact location
    assert logged.experiment_id == exp and logged.artifact_location.startswith((tmp_path / "artifacts").as_uri())
    version = mlflow.register_model(f"models:/{model_id}", "net")
    client.set_registered_model_alias("net", "champion", version.version)
    loaded = load_model("models:/net@champion")
    x = torch.rand(5, *network.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x)) and not loaded.training
    info = mlflow.models.get_model_info("models:/net@champion")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert set(info.flavors) == {models.FLAVOR}  # no pickled flavour, no python_function


def test_a_planted_pickle_model_in_the_registry_is_refused_and_never_run(store, tmp_path):
    from sweeps.results.deploy import load_model

    client, exp = store
    marker = tmp_path / "payload-ran"
    model_id = _plant_pickle(client, client.create_run(exp).info.run_id, marker)
    version = mlflow.register_model(f"models:/{model_id}", "evil")
    client.set_registered_model_alias("evil", "champion", version.version)
    t0 = time.monotonic()
    with pytest.raises(models.UnsafeModelError) as info:
        load_model("models:/evil@champion")
    assert time.monotonic() - t0 < 1.5
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("models:/evil@champion: refused: not a model this project logged")
    assert "pytorch" in msg
    assert not marker.exists(), "the model's pickle payload was executed"
    # MLflow's own loader, which the service never calls, is switched off for the process too.
    from mlflow import pytorch as mlflow_pytorch

    with pytest.raises(Exception, match="disallowed"):
        mlflow_pytorch.load_model("models:/evil@champion")
    assert not marker.exists()


def test_tampered_weights_in_the_artifact_store_are_refused_and_never_run(store, tmp_path):
    from sweeps.results.deploy import load_model

    client, exp = store
    network = preset("sparse-mlp")
    model_id = models.log_model(build_network(network, seed=0), network, client.create_run(exp).info.run_id)
    marker = tmp_path / "payload-ran"
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(tmp_path / "look")))
    stored = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://")) / models.WEIGHTS
    assert stored.is_file() and (folder / models.WEIGHTS).read_bytes() == stored.read_bytes()
    state = torch.load(stored, weights_only=True)
    state["extra"] = _Payload(marker)  # whoever can write to the bucket
    torch.save(state, stored)
    with pytest.raises(models.UnsafeModelError) as info:
        load_model(f"models:/{model_id}")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"models:/{model_id}: weights.pt: ") and "not loaded" in msg
    assert "sweeps-model-" not in msg  # no temporary path
    assert not marker.exists()


def test_sweeps_export_refuses_a_planted_pickle_in_one_line(tmp_path):
    """`sweeps export` on a sweep whose trials' MLflow runs point at a pickled model: exit 2, one
    line, the payload never runs and no export folder is written."""
    root = build_store(tmp_path / "store", "planted", trials=6)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = tracking.experiment_id(client, "planted", (root / "mlartifacts").as_uri())
    marker = tmp_path / "payload-ran"
    mlflow.set_tracking_uri(uri)
    try:
        model_id = None
        for number in range(6):
            run = client.create_run(exp, tags={tracking.TAG_SWEEP: "planted", tracking.TAG_KIND: "trial",
                                              tracking.TAG_OPTUNA: str(number)})
            if model_id is None:
                model_id = _plant_pickle(client, run.info.run_id, marker)
            else:
                client.log_outputs(run.info.run_id, [LoggedModelOutput(model_id, step=0)])
    finally:
        mlflow.set_tracking_uri(None)
    out = tmp_path / "export"
    proc = run_cli(["export", "planted", "--root", str(root), "--out", str(out)], cwd=tmp_path, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    lines = [line for line in text.splitlines() if line.strip() and "Downloading artifacts" not in line]
    assert len(lines) == 1 and "refused: not a model this project logged" in lines[0], text
    assert not marker.exists() and not out.exists()


# Every loader that can unpickle, and where the package may call it: the allowed calls are the
# tensors-only ones. A new call of any of these fails here until it is looked at.
_UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "cloudpickle.load", "cloudpickle.loads",
               "torch.load", "mlflow.pytorch.load_model", "mlflow.pyfunc.load_model", "Tuner.restore",
               "tune.Tuner.restore", "Tuner.can_restore", "tune.Tuner.can_restore", "ray.cloudpickle.load", "ray.cloudpickle.loads", "numpy.load", "np.load",
               "joblib.load", "yaml.load", "yaml.unsafe_load", "torch.export.load", "torch.jit.load"}
_ALLOWED = {
    ("sparsity/train.py", "torch.load"): "weights_only=True",
    ("sparsity/data/gsc.py", "torch.load"): "weights_only=True",
}


def _calls(path: Path) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in _UNPICKLERS:
                found.append((name, ast.unparse(node)))
    return found


def test_every_unpickling_loader_the_package_calls_is_listed():
    seen = {}
    for package in ("sparsity", "sweeps", "dashboards"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for name, call in _calls(path):
                seen[(rel, name)] = call
    assert set(seen) == set(_ALLOWED), f"unlisted or vanished loaders: {set(seen) ^ set(_ALLOWED)}"
    for (rel, name), call in seen.items():
        if name == "torch.load":
            assert "weights_only=True" in call, f"{rel}: {call}"
