"""Faults: a trial that raises is retried then recorded as failed, a NaN loss fails its trial with
the reason, and a sweep whose driver was killed, then whose resume was stopped with SIGTERM mid-trial
(no process of it left, nothing left RUNNING), resumes to completion with no duplicates in any store."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
from optuna.trial import TrialState

from sweeps.tracking import runs as tracking

from cluster_helpers import ray_up, sigterm_when
from sweep_helpers import cli_env, run_cli, study, tiny_spec, trial_runs, write_spec


# End to end (real sweeps, a killed driver, a stopped resume and a resume): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


# Retries (a fresh worker for the retried trial) make it the longest single-sweep test (about 65 s on 2
# quiet cores): scripts/test.sh (CI) leaves it out unless given -m (`bash scripts/test.sh -m ''`).
@pytest.mark.extended
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


class _Payload:
    """Unpickling this creates a file: proof that code planted in Ray's storage ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))


def _trials(root, name):
    try:
        return study(root, name).get_trials()
    except Exception:  # the study is not there yet
        return []


def test_killed_then_stopped_sweep_resumes_without_repeats_or_duplicates(tmp_path, data_dir):
    """1. the driver is killed (SIGKILL: nothing marks the stores) once a trial has finished, and
       whoever can write to Ray's storage replaces Tune's pickled experiment state with a payload:
       `resume` rebuilds the run from Optuna and MLflow and never unpickles it (issue 19);
    2. `resume` is stopped with SIGTERM while a trial trains: the driver, its local Ray's servers,
    agents and workers all end, it exits 130 and marks its stores (nothing RUNNING in either);
    3. `resume` again finishes the budget: finished trials not rerun, one MLflow run per trial."""
    spec = tiny_spec("killed", budget={"trials": 3, "max_concurrent": 1, "max_failures": 0},
                     confirm={"top": 1, "seeds": 1})
    path = write_spec(tmp_path, spec)
    root = tmp_path / "store"
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "run", str(path), "--root", str(root)], cwd=tmp_path,
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    done_before = 0
    try:
        while time.time() < deadline and done_before < 1:
            time.sleep(1)
            done_before = sum(t.state == TrialState.COMPLETE for t in _trials(root, "killed"))
        assert done_before >= 1, "no trial finished before the deadline"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait()
    assert done_before < 4, "the sweep finished before it could be killed"
    at_kill = _trials(root, "killed")
    finished_numbers = {t.number for t in at_kill if t.state == TrialState.COMPLETE}
    marker = tmp_path / "payload-ran"
    experiment = root / "ray" / "killed"
    planted = sorted(set(experiment.rglob("*.pkl")) | {experiment / "tuner.pkl"})
    for path in planted:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    assert len(planted) >= 2, planted  # tuner.pkl and the searcher's state at least

    # 2. Resumed, then stopped with SIGTERM once it trains a trial the killed driver never started.
    log = tmp_path / "resume.log"
    with open(log, "wb") as out:
        resumed = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "resume", "killed", "--root", str(root)],
                                   cwd=tmp_path, env=cli_env(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    known = max(t.number for t in at_kill)
    sigterm_when(resumed, log, lambda procs: ray_up(procs) and any(
        t.number > known and t.state == TrialState.RUNNING for t in _trials(root, "killed")), "a new trial ran")
    assert resumed.returncode == 130 and "interrupted" in log.read_text(), log.read_text()[-3000:]
    assert not [t.number for t in _trials(root, "killed") if t.state == TrialState.RUNNING]
    assert not [r for r in trial_runs(root, "killed") if r.info.status == "RUNNING"]
    finished_numbers |= {t.number for t in _trials(root, "killed") if t.state == TrialState.COMPLETE}

    # 3. Resumed to the end.
    proc = run_cli(["resume", "killed", "--root", str(root)], cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = study(root, "killed").get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6  # the budget: 3 searched + 1 baseline, then 1 replicate of the top config and the baseline
    assert finished_numbers <= {t.number for t in complete}  # finished trials were not rerun
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert sum(t.user_attrs.get("baseline") == "dense" and "replicate_of" not in t.user_attrs for t in complete) == 1
    reps = [t for t in complete if "replicate_of" in t.user_attrs]
    assert sorted(t.user_attrs["replicate_of"] for t in reps)[0] == 0 and len(reps) == 2  # the baseline's and one
    assert len({t.user_attrs["replicate_of"] for t in reps}) == 2  # each replicate once
    from sweeps.results.read import config_summaries

    confirmed = {c.number: c for c in config_summaries(trials) if c.confirmed}
    assert set(confirmed) == {t.user_attrs["replicate_of"] for t in reps}
    assert len(confirmed[0].noise) == 2  # the baseline's figures: its first seed and its replicate
    runs = trial_runs(root, "killed")
    numbers = [int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs]
    assert len(numbers) == len(set(numbers))  # one MLflow run per Optuna trial
    status = {int(r.data.tags[tracking.TAG_OPTUNA]): r.info.status for r in runs}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert status[t.number] == "FINISHED"
        elif t.number in status:
            assert status[t.number] == "FAILED"  # orphaned by the kill or the stop, reconciled
    assert not marker.exists(), "resume unpickled the planted Tune state"
