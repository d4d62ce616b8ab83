"""ASHA early stopping: a trial it stops is PRUNED in Optuna (its partial values kept as user
attrs, off the Pareto front) and KILLED in MLflow, and the sweep completes."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from sweeps.tracking import runs as tracking

from sweep_helpers import run_cli, study, tiny_spec, trial_runs, write_spec

# End to end (a real sweep with early stopping): `pytest -m "not slow"` and `-m "not extended"` leave it
# out (the rules themselves: test_replay.py); CI runs it with the whole suite.
pytestmark = [pytest.mark.slow, pytest.mark.extended]


def test_asha_stops_a_hopeless_trial(tmp_path, data_dir):
    spec = tiny_spec(
        "asha",
        recipe={"epochs": 2, "first_epoch_batch_size": 32},
        # Run one at a time: the second baseline (a learning rate too small to learn anything)
        # reaches epoch 1 after the first, falls below ASHA's cutoff and is stopped there.
        baselines=[{"name": "dense"}, {"name": "dense-frozen", "params": {"lr": 1.0e-7}}],
        budget={"trials": 0, "max_concurrent": 1, "max_failures": 0},
        early_stopping={"metric": "val_accuracy", "grace_period": 1, "reduction_factor": 2},
    )
    root = tmp_path / "store"
    proc = run_cli(["run", str(write_spec(tmp_path, spec)), "--root", str(root)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = {t.number: t for t in study(root, "asha").get_trials()}
    assert trials[0].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.PRUNED
    assert trials[1].user_attrs["stopped_at_epoch"] == 1
    assert trials[1].user_attrs["early_val_accuracy"] < trials[0].values[0]
    assert [t.number for t in study(root, "asha").best_trials] == [0]
    runs = {int(r.data.tags[tracking.TAG_OPTUNA]): r for r in trial_runs(root, "asha")}
    assert runs[0].info.status == "FINISHED"
    assert runs[1].info.status == "KILLED" and runs[1].data.tags["sweeps.stopped_early"] == "epoch 1"
