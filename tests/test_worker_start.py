"""A local sweep's trials start on the workers Ray prestarted, with what they import already loaded.

Two things make that happen and either can break with a Ray upgrade: Ray's
``preload_python_modules`` (set by `sweeps` for its local Ray) and Tune's trial actors asking for
no runtime environment a prestarted worker lacks (`service._trial_actors_on_prestarted_workers`).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sweep_helpers import cli_env, tiny_spec

# End to end (a real sweep on a local Ray): `pytest -m "not slow"` leaves it out; the full suite (CI) runs it.
pytestmark = pytest.mark.slow

_PROBE = r"""
import json, os, sys, time
from ray import tune
from sweeps import service
from sweeps.spec import SweepSpec

spec = SweepSpec.from_dict(json.loads(sys.argv[1]))
service._init_ray(None, spec)
ray_started = time.time()

def probe(config):
    def born():  # this process's start, as psutil computes it (Linux)
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(int(x.split()[1]) for x in open("/proc/stat") if x.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    tune.report({"pid": os.getpid(), "born": born(), "preloaded": "sweeps.worker" in sys.modules})

os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
with service._trial_actors_on_prestarted_workers():
    grid = tune.Tuner(
        tune.with_resources(probe, {"cpu": 1}),
        tune_config=tune.TuneConfig(num_samples=2, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=sys.argv[2], verbose=0),
    ).fit()
print("PROBE " + json.dumps({"ray_started": ray_started, "trials": [r.metrics for r in grid]}, default=str))
"""


def test_local_trials_run_on_prestarted_preloaded_workers(tmp_path):
    spec = tiny_spec("worker-start", stores={"root": str(tmp_path / "root")})
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(spec), str(tmp_path / "ray")],
                          env=cli_env(), capture_output=True, text=True, timeout=240)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    probe = json.loads(lines[0].removeprefix("PROBE "))
    trials = probe["trials"]
    assert len(trials) == 2 and all(t["preloaded"] for t in trials)
    # Started by Ray's raylet as it came up (before `ray.init` returned): the prestarted workers,
    # not fresh ones (without the runtime-environment fix Ray starts new workers after `ray.init`).
    assert all(t["born"] < probe["ray_started"] for t in trials), trials
