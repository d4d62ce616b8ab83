"""Faults: a trial that raises is retried then recorded as failed, a NaN loss fails its trial with
the reason, and a killed driver's sweep resumes to completion with no duplicates in any store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from sweeps import tracking

from sweep_helpers import cli_env, run_cli, study, tiny_spec, trial_runs, write_spec


# End to end (real sweeps, a killed driver and a resume): `pytest -m "not slow"` leaves it out; the full suite (CI) runs it.
pytestmark = pytest.mark.slow


def test_raising_and_nan_trials_are_recorded_as_failed_and_the_sweep_completes(tmp_path, data_dir):
    spec = tiny_spec(
        "faults",
        # Trial 0 (a baseline with an absurd learning rate) diverges to a NaN loss.
        baselines=[{"name": "dense-diverging", "params": {"lr": 1.0e6}}],
        budget={"trials": 2, "max_concurrent": 2, "max_failures": 1},
        space={"percent_on": {"low": 0.05, "high": 0.4, "log": True}, "lr": {"low": 0.01, "high": 0.05}},
    )
    path = write_spec(tmp_path, spec)
    root = tmp_path / "store"
    # Trial 1 raises on every attempt (its one retry included).
    proc = run_cli(["run", str(path), "--root", str(root)], cwd=tmp_path, SPARSE_SWEEPS_FAIL_TRIAL="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = {t.number: t for t in study(root, "faults").get_trials()}
    assert trials[0].state == TrialState.FAIL
    assert "NaN" in trials[0].user_attrs["fail_reason"]
    assert trials[1].state == TrialState.FAIL
    assert trials[2].state == TrialState.COMPLETE
    runs = {int(r.data.tags[tracking.TAG_OPTUNA]): r for r in trial_runs(root, "faults")}
    assert sorted(runs) == [0, 1, 2]  # the retried trial reopened its run: no duplicate
    assert runs[0].info.status == "FAILED" and "NaN" in runs[0].data.tags["sweeps.error"]
    assert runs[1].info.status == "FAILED" and "injected fault" in runs[1].data.tags["sweeps.error"]
    assert runs[2].info.status == "FINISHED"


def test_killed_driver_resumes_without_repeats_or_duplicates(tmp_path, data_dir):
    spec = tiny_spec("killed", budget={"trials": 3, "max_concurrent": 1, "max_failures": 0})
    path = write_spec(tmp_path, spec)
    root = tmp_path / "store"
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "run", str(path), "--root", str(root)], cwd=tmp_path,
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    done_before = 0
    try:
        while time.time() < deadline:
            time.sleep(1)
            if (root / "optuna.db").exists():
                try:
                    done_before = sum(t.state == TrialState.COMPLETE for t in study(root, "killed").get_trials())
                except Exception:
                    continue
                if done_before >= 1:
                    break
        assert done_before >= 1, "no trial finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait()
    assert done_before < 4, "the sweep finished before it could be killed"
    finished_numbers = {t.number for t in study(root, "killed").get_trials() if t.state == TrialState.COMPLETE}

    proc = run_cli(["resume", "killed", "--root", str(root)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = study(root, "killed").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4  # the budget: 3 searched + 1 baseline
    assert finished_numbers <= {t.number for t in complete}  # finished trials were not rerun
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert sum(t.user_attrs.get("baseline") == "dense" for t in complete) == 1
    runs = trial_runs(root, "killed")
    numbers = [int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs]
    assert len(numbers) == len(set(numbers))  # one MLflow run per Optuna trial
    status = {int(r.data.tags[tracking.TAG_OPTUNA]): r.info.status for r in runs}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert status[t.number] == "FINISHED"
        elif t.number in status:
            assert status[t.number] == "FAILED"  # orphaned by the kill, reconciled
