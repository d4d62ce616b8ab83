"""A local sweep's trials start on the workers Ray prestarted, with what they import already loaded.

Three things make that happen and each can break with a Ray upgrade: Ray's
``preload_python_modules`` (set by `sweeps` for its local Ray), Tune's trial actors asking for no
runtime environment a prestarted worker lacks (`ray_private.actors_on_prestarted_workers`), and
the local Ray not killing idle workers (`ray_start._LOCAL_RAY_CONFIG`): Ray counted the prestarted
workers still waiting for trial actors as surplus once Tune had reserved the trials' CPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sweep_helpers import cli_env, tiny_spec

# End to end (a local Ray and Tune): `pytest -m "not slow"` and `-m "not extended"` leave it out (it guards
# start-up speed, not results); CI runs it with the whole suite.
pytestmark = [pytest.mark.slow, pytest.mark.extended]

_PROBE = r"""
import json, os, sys, time
import ray
from ray import tune
from ray.core.generated import common_pb2, gcs_pb2
from sweeps.run import ray_private, ray_start
from sweeps.spec import SweepSpec

def workers():  # every worker process the raylet has registered so far, alive or gone (Ray's GCS table)
    rows = map(gcs_pb2.WorkerTableData.FromString, ray._private.state.state._connect_and_get_accessor().get_worker_table())
    return [{"pid": r.pid, "alive": r.is_alive, "launched_ms": r.worker_launch_time_ms, "exit": r.exit_detail}
            for r in rows if r.worker_type == common_pb2.WORKER]

spec = SweepSpec.from_dict(json.loads(sys.argv[1]))
ray_start.start_ray(None, spec)
ray_started_ms = time.time() * 1000
cpus = int(ray.cluster_resources()["CPU"])
# Ray prestarts one worker per CPU as the driver connects. Wait until they have registered (they then
# count as idle), and then past Ray's idle-worker threshold (1 s), as a real sweep's set-up (stores,
# MLflow, Optuna) does before Tune asks for its trials' CPUs and actors.
deadline = time.time() + 120
while sum(w["alive"] and w["launched_ms"] < ray_started_ms for w in workers()) < cpus:
    assert time.time() < deadline, ("prestarted workers never registered", cpus, workers())
    time.sleep(0.1)
time.sleep(2)

def probe(config):
    tune.report({"pid": os.getpid(), "preloaded": "sweeps.run.worker" in sys.modules})

os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
with ray_private.actors_on_prestarted_workers():
    grid = tune.Tuner(
        tune.with_resources(probe, {"cpu": 1}),
        tune_config=tune.TuneConfig(num_samples=cpus, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=sys.argv[2], verbose=0),
    ).fit()
print("PROBE " + json.dumps({"ray_started_ms": ray_started_ms, "cpus": cpus, "workers": workers(),
                             "trials": [r.metrics for r in grid]}, default=str))
"""


def test_local_trials_run_on_prestarted_preloaded_workers(tmp_path):
    spec = tiny_spec("worker-start", stores={"root": str(tmp_path / "root")})
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(spec), str(tmp_path / "ray")],
                          env=cli_env(), capture_output=True, text=True, timeout=240)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    probe = json.loads(lines[0].removeprefix("PROBE "))
    trials, workers = probe["trials"], probe["workers"]
    assert probe["cpus"] == 2 and len(trials) == 2 and all(t["preloaded"] for t in trials), probe
    # Every worker the sweep's Ray ever registered was one it launched before `ray.init` returned (its
    # prestarted workers): no trial actor needed a fresh worker, which would pay the imports again.
    # (Without the runtime-environment fix Ray starts fresh workers for the actors; with Ray's
    # idle-worker killing it killed prestarted workers once Tune had reserved the trials' CPUs.)
    prestarted = {w["pid"] for w in workers if w["launched_ms"] < probe["ray_started_ms"]}
    assert len(prestarted) == probe["cpus"] and len(workers) == len(prestarted), workers
    assert not [w for w in workers if "idle" in w["exit"].lower()], workers  # none killed as surplus
    assert {t["pid"] for t in trials} <= prestarted, (trials, workers)
