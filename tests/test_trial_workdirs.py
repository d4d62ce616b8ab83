"""A trial's work folder in the temp folder outlives a killed trial (its clean-up never runs): the
next trial on the machine removes the folders of processes that are gone, and only those."""

from __future__ import annotations

import os
import subprocess
import sys


def test_stale_trial_folders_of_dead_processes_are_removed(tmp_path):
    from sweeps.run.trainable import _workdir_prefix, remove_stale_workdirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / f"sweeps-trial-7-pid{dead_pid}-x1"
    live = tmp_path / f"{_workdir_prefix(3)}x2"  # this process: alive
    foreign = tmp_path / "sweeps-trial-9-pidnot-a-number-x3"
    other = tmp_path / "something-else"
    for d in (stale, live, foreign, other):
        d.mkdir()
        (d / "train.pt").write_bytes(b"x")
    assert str(os.getpid()) in live.name
    removed = remove_stale_workdirs(str(tmp_path))
    assert removed == [str(stale)]
    assert not stale.exists() and live.exists() and foreign.exists() and other.exists()
