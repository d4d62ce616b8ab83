"""The deployment handoff on a finished sweep: registry round trip and export folder; a sweep whose
every trial failed still gets its summary, and `sweeps best` on it is a clear error."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from sparsity import NetworkSpec, build_network, sparse_weight_modules
from sweeps.results.deploy import load_model

from sweep_helpers import run_cli


# The registry and export tests read the real sweep of conftest's finished_sweep (end to end, marked
# slow: `pytest -m "not slow"` leaves them out); the failed-sweep tests write their stores directly.


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_export_rebuilds_the_same_network_and_predictions(registered):
    folder, root, doc = registered
    out = folder / "export"
    proc = run_cli(["export", "e2e", "--root", str(root), "--out", str(out)], cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in out.iterdir()} == {"config.yaml", "weights.safetensors", "MODEL_CARD.md"}
    model = load_model(out)
    reference = _checkpoint_model(root, doc)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    for m in sparse_weight_modules(model):  # sparse weights still exactly sparse
        assert int((m.weight != 0).sum(1).max()) <= m.nonzero_per_unit
    card = (out / "MODEL_CARD.md").read_text()
    assert "clean accuracy" in card and "dense baseline" in card and "| linear[0] |" in card


def _failed_sweep(root, name: str):
    """What a sweep whose only trial failed leaves in its stores (a real run of it took a whole local
    Ray sweep: about 30 s): the saved spec, and the study with that trial FAIL with its reason."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from sweep_helpers import tiny_spec
    from sweeps.results.read import spec_path
    from sweeps.spec import SweepSpec
    from sweeps.search.study import SweepStudy

    spec = SweepSpec.from_dict(tiny_spec(name, baselines=[{"name": "dense", "params": {"lr": 1.0e6}}],
                                         budget={"trials": 0, "max_concurrent": 1, "max_failures": 0},
                                         stores={"root": str(root)}))
    spec_path(root, name).parent.mkdir(parents=True, exist_ok=True)
    spec_path(root, name).write_text(spec.to_yaml())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = SweepStudy.create(spec.study_plan(), spec.stores.resolved().optuna_storage).study
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
        "baseline": "dense", "ray_trial_id": "t_00000", "fail_reason": "NaN loss at epoch 1"}))
    return spec, study


def test_best_on_a_sweep_without_finished_trials_is_a_clear_error(tmp_path):
    root = tmp_path / "store"
    _failed_sweep(root, "nothing")
    proc = run_cli(["best", "nothing", "--root", str(root)], cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no finished trials" in proc.stdout


def test_a_sweep_without_finished_trials_still_gets_its_summary(tmp_path):
    """The sweep's tail (service._log_sweep_summary) with an empty Pareto front: the front, report
    and counts are logged to the parent run, nothing raises."""
    from mlflow.tracking import MlflowClient

    from sweeps.run import service
    from sweeps.run.context import open_context
    from sweeps.tracking import runs as tracking

    spec, study = _failed_sweep(tmp_path / "store", "nothing")
    stores = spec.stores.resolved()  # as the service opens them: artifacts under the root too
    client = MlflowClient(stores.mlflow_tracking_uri)
    tracking.parent_run(client, tracking.experiment_id(client, "nothing", stores.mlflow_artifact_location),
                        "nothing", create=True)
    ctx = open_context(spec.resolved(), create=False)  # the sweep as `resume` opens it
    client, parent = ctx.client, ctx.parent_run_id
    from sweeps.results.read import SweepReader

    service._log_sweep_summary(ctx, SweepReader.of(ctx.spec, ctx.study.study.get_trials(deepcopy=False)), 1.0)
    run = client.get_run(parent)
    assert run.data.metrics["trials_failed"] == 1 and run.data.metrics["trials_complete"] == 0
    assert run.data.metrics["pareto_size"] == 0
    artifacts = {a.path for a in client.list_artifacts(parent)}
    assert {"pareto_front.json", "report.html"} <= artifacts
    front = json.loads(Path(client.download_artifacts(parent, "pareto_front.json", str(tmp_path))).read_text())
    assert front == {"pareto_front": []}
