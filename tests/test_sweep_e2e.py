"""A real 2-trial sweep on an MNIST subset, end to end through the CLI: Ray Tune runs the
trials, Optuna holds the objectives, MLflow the runs; `sweeps best` writes a rebuildable YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from sparsity import NetworkSpec, build_network
from sweeps.tracking import runs as tracking

from sweep_helpers import mlflow_client, run_cli, study, trial_runs


# End to end (a real sweep through the CLI (a local Ray)): `pytest -m "not slow"` leaves it out; the full suite (CI) runs it.
pytestmark = pytest.mark.slow


@pytest.fixture
def finished(finished_sweep):
    return finished_sweep


def test_optuna_holds_two_completed_trials_with_both_objectives(finished):
    _, root, _ = finished
    trials = study(root, "e2e").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["baseline"] == "dense"  # the dense reference runs first
    for t in trials:
        acc, score = t.values
        assert 0.1 < acc <= 1.0
        assert 0 < score <= 11 * 200 and score == int(score)
        assert t.user_attrs["ray_trial_id"]
    assert set(trials[1].params) == {"percent_on", "weight_density"}


def test_mlflow_holds_parent_and_nested_runs_with_noise_curves(finished):
    _, root, _ = finished
    client = mlflow_client(root)
    exp = client.get_experiment_by_name("e2e")
    parents = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_KIND: "sweep"})
    assert len(parents) == 1
    parent = parents[0]
    runs = trial_runs(root, "e2e")
    assert len(runs) == 2
    numbers = sorted(int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs)
    assert numbers == [0, 1]
    trials = {t.number: t for t in study(root, "e2e").get_trials()}
    for r in runs:
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.info.status == "FINISHED"
        n = int(r.data.tags[tracking.TAG_OPTUNA])
        assert r.data.tags[tracking.TAG_RAY] == trials[n].user_attrs["ray_trial_id"]
        history = client.get_metric_history(r.info.run_id, "val_noise_accuracy")
        assert sorted(m.step for m in history) == list(range(0, 55, 5))  # the paper's 11 levels
        assert r.data.metrics["val_noise_score"] == trials[n].values[1]
        assert r.data.metrics["val_accuracy"] == pytest.approx(trials[n].values[0])
        curve = json.loads(Path(client.download_artifacts(r.info.run_id, "noise_curve.json")).read_text())
        assert len(curve["data"]) == 11
        # Where the trial's time went: the parts are measured, not copied from one another.
        m = r.data.metrics
        assert 0 < m["report_seconds"] < m["trial_seconds"] and 0 < m["setup_seconds"] and 0 < m["logging_seconds"]
    assert "pareto_front.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert parent.data.params["name"] == "e2e"


def test_cli_prints_front_and_where_to_browse(finished):
    _, _, out = finished
    assert "Pareto front of e2e" in out
    assert "sweeps dashboard e2e" in out


def test_best_writes_yaml_that_rebuilds_the_network(finished):
    folder, root, _ = finished
    proc = run_cli(["best", "e2e", "--root", str(root), "--out", str(folder / "best.yaml")], cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load((folder / "best.yaml").read_text())
    spec = NetworkSpec.from_dict(doc["network"])
    model = build_network(spec, seed=doc["seed"])
    front = {t.number: t for t in study(root, "e2e").best_trials}
    assert doc["source"]["optuna_trial_number"] in front
    chosen = front[doc["source"]["optuna_trial_number"]]
    assert doc["source"]["val_noise_score"] == chosen.values[1]
    assert model.spec.num_nonzero_params == spec.num_nonzero_params


def test_status_and_list_read_the_stores(finished):
    folder, root, _ = finished
    proc = run_cli(["status", "e2e", "--root", str(root)], cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "COMPLETE" in proc.stdout and "Pareto front" in proc.stdout
    proc = run_cli(["list", "--root", str(root)], cwd=folder)
    assert "e2e" in proc.stdout and "2/2" in proc.stdout


def test_running_the_same_name_again_is_refused(finished):
    folder, root, _ = finished
    proc = run_cli(["run", str(folder / "e2e.yaml"), "--root", str(root)], cwd=folder)
    assert proc.returncode == 2
    assert "sweeps resume e2e" in proc.stdout


def test_confirm_adds_seed_replicates_as_tagged_trials_and_best_rests_on_them(tmp_path):
    """`sweeps confirm` on a finished sweep: the searched config and the baseline train again with
    2 more model seeds each, as real trials with their own MLflow runs tagged as replicates;
    status, best and the YAML then show means over them."""
    from sweep_helpers import tiny_spec, write_spec

    copy = tmp_path / "store"  # a sweep of its own: the shared one stays as the other tests expect
    run = run_cli(["run", str(write_spec(tmp_path, tiny_spec("e2e"))), "--root", str(copy)], cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sweeps confirm e2e" in run.stdout  # one seed per config: the front says how to add seeds
    proc = run_cli(["confirm", "e2e", "--top", "1", "--seeds", "2", "--root", str(copy)], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(4 of them seed replicates)" in proc.stdout  # counted in the progress line
    trials = study(copy, "e2e").get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    reps = [t for t in trials if "replicate_of" in t.user_attrs]
    assert sorted((t.user_attrs["replicate_of"], t.user_attrs["model_seed"]) for t in reps) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert all(t.user_attrs.get("baseline") == "dense" for t in reps if t.user_attrs["replicate_of"] == 0)
    assert len({tuple(t.values) for t in reps if t.user_attrs["replicate_of"] == 1}) == 2  # other seeds, other numbers
    runs = trial_runs(copy, "e2e")
    tagged = {int(r.data.tags[tracking.TAG_OPTUNA]): r.data.tags for r in runs}
    assert len(runs) == 6 and len(tagged) == 6  # one run per trial
    for t in reps:
        assert tagged[t.number][tracking.TAG_REPLICATE_OF] == str(t.user_attrs["replicate_of"])
        assert tagged[t.number][tracking.TAG_MODEL_SEED] == str(t.user_attrs["model_seed"])
    best = run_cli(["best", "e2e", "--root", str(copy), "--out", str(tmp_path / "best.yaml")], cwd=tmp_path)
    assert best.returncode == 0, best.stdout + best.stderr
    src = yaml.safe_load((tmp_path / "best.yaml").read_text())["source"]
    n = src["estimates"]["val_noise_score"]["n"]
    chosen = src["optuna_trial_number"]
    mine = [t.values[1] for t in reps if t.user_attrs["replicate_of"] == chosen]
    if chosen == 0:  # the baseline: every seed counts
        mine.insert(0, trials[0].values[1])
    assert n == len(mine) and src["estimates"]["val_noise_score"]["mean"] == pytest.approx(sum(mine) / n)
    assert "vs dense: " in best.stdout or chosen == 0
    again = run_cli(["confirm", "e2e", "--top", "1", "--seeds", "2", "--root", str(copy)], cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and len(study(copy, "e2e").get_trials()) == 6  # nothing left to add
    # A larger replicate budget: the second (and last) look adds seeds where the claims are open.
    more = run_cli(["confirm", "e2e", "--budget", "8", "--root", str(copy)], cwd=tmp_path, timeout=600)
    assert more.returncode == 0, more.stdout + more.stderr
    trials = study(copy, "e2e").get_trials()
    later = [t for t in trials if t.user_attrs.get("look") == 2]
    assert 1 <= len(later) <= 4 and len(trials) == 6 + len(later)
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["replicate_k"] >= 3 for t in later)
    spent = run_cli(["confirm", "e2e", "--budget", "12", "--root", str(copy)], cwd=tmp_path, timeout=600)
    assert spent.returncode == 0 and len(study(copy, "e2e").get_trials()) == len(trials)  # both looks are spent
