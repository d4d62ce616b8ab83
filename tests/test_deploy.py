"""The deployment handoff on a finished sweep: registry round trip and export folder."""

from __future__ import annotations

import glob

import mlflow
import pytest
import torch
import yaml

from sparsity import NetworkSpec, build_network, sparse_weight_modules
from sweeps.deploy import load_model

from sweep_helpers import run_cli


# End to end (reads the real sweep of conftest's finished_sweep): `pytest -m "not slow"` leaves it out; the full suite (CI) runs it.
pytestmark = pytest.mark.slow


def _checkpoint_model(root, doc):
    """The trial's own model, rebuilt from its last Ray checkpoint (independent of MLflow)."""
    ray_id = doc["source"]["ray_trial_id"]
    [path] = glob.glob(str(root / "ray" / "e2e" / f"*{ray_id}*" / "checkpoint_*" / "train.pt"))
    model = build_network(NetworkSpec.from_dict(doc["network"]), seed=doc["seed"])
    model.load_state_dict(torch.load(path, weights_only=True)["model"])
    return model.eval()


@pytest.fixture(scope="module")
def registered(finished_sweep):
    folder, root, _ = finished_sweep
    out = folder / "champion.yaml"
    proc = run_cli(["best", "e2e", "--root", str(root), "--register", "e2e-net", "--out", str(out)], cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "models:/e2e-net@champion" in proc.stdout
    return folder, root, yaml.safe_load(out.read_text())


def test_registry_round_trip_matches_the_trials_model(registered):
    folder, root, doc = registered
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    deployed = load_model("models:/e2e-net@champion")
    assert not deployed.training
    reference = _checkpoint_model(root, doc)
    x = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(deployed(x), reference(x))
        for batch in (1, 3):  # any batch size
            assert deployed(x[:batch]).shape == (batch, 10)
    version = mlflow.tracking.MlflowClient().get_model_version_by_alias("e2e-net", "champion")
    assert version.tags["sweep"] == "e2e"
    assert int(version.tags["optuna_trial_number"]) == doc["source"]["optuna_trial_number"]
    info = mlflow.models.get_model_info("models:/e2e-net@champion")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_export_rebuilds_the_same_network_and_predictions(registered):
    folder, root, doc = registered
    out = folder / "export"
    proc = run_cli(["export", "e2e", "--root", str(root), "--out", str(out)], cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} == {"config.yaml", "weights.pt", "MODEL_CARD.md"}
    model = load_model(out)
    reference = _checkpoint_model(root, doc)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    for m in sparse_weight_modules(model):  # sparse weights still exactly sparse
        assert int((m.weight != 0).sum(1).max()) <= m.nonzero_per_unit
    card = (out / "MODEL_CARD.md").read_text()
    assert "clean accuracy" in card and "dense baseline" in card and "| linear[0] |" in card


def test_best_on_a_sweep_without_finished_trials_is_a_clear_error(finished_sweep, tmp_path):
    from sweep_helpers import tiny_spec, write_spec

    folder, _, _ = finished_sweep
    root = tmp_path / "store"
    # A sweep whose only trial fails: nothing finished, no front.
    spec = write_spec(tmp_path, tiny_spec("nothing", baselines=[{"name": "dense", "params": {"lr": 1.0e6}}],
                                          budget={"trials": 0, "max_concurrent": 1, "max_failures": 0}))
    assert run_cli(["run", str(spec), "--root", str(root)], cwd=tmp_path).returncode == 0
    proc = run_cli(["best", "nothing", "--root", str(root)], cwd=tmp_path)
    assert proc.returncode == 2
    assert "no finished trials" in proc.stdout
