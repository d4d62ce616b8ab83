"""Cluster mode on a real (loopback) cluster: a PostgreSQL server, an MLflow tracking server on it,
and two Ray nodes started with `ray start` on this machine, 1 CPU each, all on 127.0.0.1.

* Local-only stores (SQLite, a local folder not declared shared) are refused on the two-node cluster
  before anything is written, naming the setting to change.
* A 6-trial sweep submitted with `sweeps run --address`, Optuna on PostgreSQL and MLflow on the
  server, runs trials on both nodes. Once a trial has finished on the worker node and another is
  mid-run there (its epoch-1 checkpoint in the Ray storage), the worker node is killed: the running
  trial is retried on the head from that checkpoint, the sweep completes, each store holds every
  trial exactly once, nothing finished is lost, and `sweeps best` works against the servers.

The Ray nodes are started without SPARSE_SWEEPS_*: trials on them find the data only because the
driver passes its data root on (with each trial's parameters). The Ray storage path is a local folder
declared `shared_filesystem: true`: both nodes are on this machine, so it is one filesystem.
Everything is stopped through what the fixture started (process trees, `pg_ctl stop` on its own
folder); nothing calls `ray stop`, which would stop other Ray instances on the machine. The tests
share the stack and the sweep (module scope) and run in file order: the refusals need both nodes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sparsity import NetworkSpec, build_network
from sweeps.tracking import runs as tracking

from cluster_helpers import (LoopbackCluster, MlflowServer, Postgres, base_env, ensure_postgres, logs_tail,
                             stop_tree, without_sweeps_env)
from sweep_helpers import tiny_spec, write_spec

NODE_TAG = "sweeps.node_id"


# End to end (a PostgreSQL, an MLflow server and a two-node Ray cluster: about 100 s on 2 quiet cores, the
# most of any file): `pytest -m "not slow"` and `-m "not extended"` leave it out; CI runs it
# (with the whole suite).
pytestmark = [pytest.mark.slow, pytest.mark.extended]


def _kill_leftovers(marker: str) -> None:
    """Last resort: SIGKILL any process whose command line names this test's own temp folder
    (Ray workers started under its --temp-dir), never anything else."""
    me = os.getpid()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            if pid != me and marker.encode() in cmdline.read_bytes():
                os.kill(pid, 9)
        except (OSError, ValueError):
            continue


@pytest.fixture(scope="module")
def stack(data_dir):
    try:
        import psycopg2  # noqa: F401  (Optuna's and MLflow's PostgreSQL driver)
    except ImportError:
        pytest.fail("psycopg2 is not installed: requirements.lock (and pyproject's dependencies) need psycopg2-binary")
    try:
        pg_bin = ensure_postgres()
    except RuntimeError as e:
        pytest.fail(str(e))
    base = Path(tempfile.mkdtemp(prefix="smn-"))  # short: Ray's socket paths live below
    pg = Postgres(pg_bin)
    server = cluster = None
    try:
        pg.start()
        mlflow_db, optuna_url = pg.create_database("mlflow"), pg.create_database("optuna")
        # The password reaches every process as $PGPASSWORD (a cluster's secret), never in a URL.
        server = MlflowServer(mlflow_db, base / "mlartifacts", base / "mlflow.log", env=pg.env).start(wait=False)
        cluster = LoopbackCluster(base, without_sweeps_env(base_env(**pg.env)))
        cluster.start()  # while the MLflow server migrates its database
        server.wait()
        # This process reads the study too: an explicit password, not this process's environment.
        storage = optuna.storages.RDBStorage(optuna_url, engine_kwargs={"connect_args": {"password": pg.password}})
        yield SimpleNamespace(base=base, pg=pg, server=server, cluster=cluster, optuna_url=optuna_url,
                              optuna_storage=storage, root=base / "root", ray_storage=base / "ray-storage")
    finally:
        if cluster is not None:
            cluster.stop()
        if server is not None:
            server.stop()
        pg.stop()
        _kill_leftovers(str(base))
        shutil.rmtree(base, ignore_errors=True)


def cluster_spec(stack, name: str, **overrides) -> dict:
    spec = tiny_spec(name, **overrides)
    spec["stores"] = {
        "root": str(stack.root),
        "mlflow_tracking_uri": stack.server.uri,
        "optuna_storage": stack.optuna_url,
        "ray_storage": str(stack.ray_storage),
        "shared_filesystem": True,  # both nodes are on this machine: one filesystem
    }
    return spec


def driver_env(stack) -> dict[str, str]:
    # The driver has SPARSE_SWEEPS_DATA/CACHE (from the test's environment); the nodes do not.
    return base_env(**stack.pg.env)


def sweeps_cli(stack, args: list[str], cwd: Path, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, env=driver_env(stack),
                          capture_output=True, text=True, timeout=timeout)


def flat(text: str) -> str:
    return " ".join(text.split())


def runs_of(stack, name: str) -> list:
    client = MlflowClient(stack.server.uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return []
    return tracking.find_runs(client, exp.experiment_id, {tracking.TAG_SWEEP: name, tracking.TAG_KIND: "trial"})


def trials_of(stack, name: str) -> list:
    return optuna.load_study(study_name=name, storage=stack.optuna_storage).get_trials()


def _diagnostics(stack, proc: subprocess.CompletedProcess | None = None) -> str:
    out = "" if proc is None else f"\n--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    for err in sorted(stack.ray_storage.glob("*/*/error.txt")):
        out += f"\n--- {err} ---\n{err.read_text(errors='replace')[-2000:]}"
    c = stack.cluster
    try:
        nodes = {v: k for k, v in c.node_ids.items()}
        out += "\n--- trial runs (number, status, node) ---\n" + "\n".join(
            f"{r.data.tags.get(tracking.TAG_OPTUNA)} {r.info.status} {nodes.get(r.data.tags.get(NODE_TAG), '?')}"
            for r in runs_of(stack, SWEEP))
    except Exception as e:  # diagnostics must not hide the failure they describe
        out += f"\n(no trial runs: {e})"
    for err in sorted(stack.base.glob("ray-tmp/session_*/logs/worker-*.err")):
        text = err.read_text(errors="replace")
        if "Traceback" in text or "Error" in text:
            out += f"\n--- {err.name} ---\n{text[-1500:]}"
    return out + logs_tail(c.head.log, c.worker.log, stack.server.log)


def test_local_only_stores_are_refused_on_a_two_node_cluster(stack, tmp_path):
    # The embedded default: SQLite files and the Ray storage folder under the root. (Which settings
    # count as local, and the shared_filesystem opt-in, are unit-tested in test_cluster_configs.py.)
    spec = tiny_spec("mn-sqlite")
    spec["stores"] = {"root": str(tmp_path / "local-root")}
    proc = sweeps_cli(stack, ["run", str(write_spec(tmp_path, spec)), "--address", stack.cluster.address], cwd=tmp_path)
    out = flat(proc.stdout + proc.stderr)
    assert proc.returncode == 2, out
    assert "stores.mlflow_tracking_uri, stores.optuna_storage: a SQLite store" in out and "2 nodes" in out
    assert "stores.ray_storage: a folder on this machine's disk" in out  # in the same message
    assert "stores.shared_filesystem: true" in out  # the opt-in for a shared volume is named
    assert not (tmp_path / "local-root").exists()  # refused before anything was written


SWEEP = "mn-sweep"


def _watch(stack) -> dict | None:
    """The moment to kill the worker node: a trial has finished on it and another is running there
    with its epoch-1 checkpoint in the Ray storage. Returns what was seen, else None."""
    worker = stack.cluster.node_ids["worker"]
    on_worker = [r for r in runs_of(stack, SWEEP) if r.data.tags.get(NODE_TAG) == worker]
    finished = [r for r in on_worker if r.info.status == "FINISHED"]
    for r in on_worker:
        ray_id = r.data.tags.get(tracking.TAG_RAY, "")
        if r.info.status != "RUNNING" or not ray_id or not finished:
            continue
        if any(p.is_dir() for p in (stack.ray_storage / SWEEP).glob(f"*{ray_id}*/checkpoint_*")):
            return {"victim": int(r.data.tags[tracking.TAG_OPTUNA]), "victim_run": r.info.run_id,
                    "finished_on_worker": sorted(int(f.data.tags[tracking.TAG_OPTUNA]) for f in finished)}
    return None


@pytest.fixture(scope="module")
def node_loss(stack, tmp_path_factory):
    """Run the sweep, kill the worker node mid-sweep, return what was seen at the kill."""
    folder = tmp_path_factory.mktemp("node-loss")
    spec = cluster_spec(stack, SWEEP, budget={"trials": 5, "max_concurrent": 2, "max_failures": 2})
    # ~3 s epochs (a full batch from the first epoch), so a trial is caught mid-run after a checkpoint.
    spec["dataset"] = {"name": "mnist", "train_limit": 20000, "eval_limit": 200}
    spec["recipe"] = {"epochs": 2, "first_epoch_batch_size": 64}
    path = write_spec(folder, spec)
    log = folder / "driver.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "sweeps.cli", "run", str(path), "--address", stack.cluster.address],
            cwd=folder, env=driver_env(stack), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        seen, deadline = None, time.monotonic() + 300
        while seen is None and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
            seen = _watch(stack)
        assert seen is not None, ("the worker node never had a finished trial and a checkpointed running one "
                                  f"(driver exit {driver.poll()})" + _diagnostics(stack) + log.read_text()[-3000:])
        time.sleep(1.0)  # let the driver register the checkpoint it has just been sent
        stack.cluster.worker.kill()  # the node is lost: raylet, agents and trial workers at once
        seen["killed_after_s"] = time.monotonic() - t0
        seen["complete_at_kill"] = {t.number: t.values for t in trials_of(stack, SWEEP) if t.state == TrialState.COMPLETE}
        seen["runs_at_kill"] = {r.info.run_id: r.info.status for r in runs_of(stack, SWEEP)}
        driver.wait(timeout=400)
    finally:
        stop_tree(driver)
    seen["returncode"], seen["log"], seen["folder"] = driver.returncode, log.read_text(), folder
    seen["seconds"] = time.monotonic() - t0
    return seen


def test_sweep_completes_after_losing_the_worker_node(stack, node_loss):
    assert node_loss["returncode"] == 0, node_loss["log"][-5000:] + _diagnostics(stack)
    trials = trials_of(stack, SWEEP)  # Optuna on PostgreSQL
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.number, t.state, t.user_attrs) for t in trials]
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1


def test_each_store_holds_every_trial_once(stack, node_loss):
    runs = runs_of(stack, SWEEP)  # MLflow through the server
    assert sorted(int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs) == list(range(6))
    assert all(r.info.status == "FINISHED" for r in runs)
    trials = {t.number: t for t in trials_of(stack, SWEEP)}
    client = MlflowClient(stack.server.uri)
    for r in runs:
        n = int(r.data.tags[tracking.TAG_OPTUNA])
        assert r.data.metrics["val_noise_score"] == trials[n].values[1]
        assert r.data.tags[tracking.TAG_RAY] == trials[n].user_attrs["ray_trial_id"]
        # Artifacts went to the server's folder over HTTP: no node wrote them to a local path.
        assert r.info.artifact_uri.startswith("mlflow-artifacts:"), r.info.artifact_uri
        assert {"noise_curve.json", "summary.json"} <= {a.path for a in client.list_artifacts(r.info.run_id)}
    (parent,) = tracking.find_runs(client, runs[0].info.experiment_id, {tracking.TAG_SWEEP: SWEEP, tracking.TAG_KIND: "sweep"})
    assert parent.data.params["stores.optuna_storage"] == stack.optuna_url
    assert stack.pg.password not in str(parent.data.params)  # the password stayed in the environment
    models = client.search_logged_models([runs[0].info.experiment_id])
    assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in runs)  # one model each
    assert any((stack.base / "mlartifacts").rglob("noise_curve.json"))


def test_trials_ran_on_both_nodes(stack, node_loss):
    head, worker = stack.cluster.node_ids["head"], stack.cluster.node_ids["worker"]
    runs = {int(r.data.tags[tracking.TAG_OPTUNA]): r for r in runs_of(stack, SWEEP)}
    assert node_loss["finished_on_worker"], node_loss
    for n in node_loss["finished_on_worker"]:
        assert runs[n].data.tags[NODE_TAG] == worker  # finished there before the kill
    assert {r.data.tags[NODE_TAG] for r in runs.values()} == {head, worker}


def test_the_lost_trial_resumed_on_the_head_from_its_checkpoint(stack, node_loss):
    run = MlflowClient(stack.server.uri).get_run(node_loss["victim_run"])
    assert run.data.tags[NODE_TAG] == stack.cluster.node_ids["head"]  # retried on the surviving node
    assert run.info.status == "FINISHED"
    steps = sorted(m.step for m in MlflowClient(stack.server.uri).get_metric_history(run.info.run_id, "train_loss"))
    # Checkpointed before the kill, epoch 1 was not trained again (epoch 2 may have been, if the kill
    # came after its report but before its checkpoint reached the driver).
    assert steps.count(1) == 1 and set(steps) == {1, 2}, f"epochs logged {steps}: not resumed from a checkpoint"


def test_nothing_finished_before_the_loss_is_lost(stack, node_loss):
    after = {t.number: t for t in trials_of(stack, SWEEP)}
    for number, values in node_loss["complete_at_kill"].items():
        assert after[number].state == TrialState.COMPLETE and after[number].values == values
    runs = {r.info.run_id: r.info.status for r in runs_of(stack, SWEEP)}
    for run_id, status in node_loss["runs_at_kill"].items():
        if status == "FINISHED":
            assert runs[run_id] == "FINISHED"
    assert set(node_loss["finished_on_worker"]) <= set(node_loss["complete_at_kill"])


def test_best_reads_the_servers(stack, node_loss, tmp_path):
    out = tmp_path / "best.yaml"
    proc = sweeps_cli(stack, ["best", SWEEP, "--root", str(stack.root), "--out", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = yaml.safe_load(out.read_text())
    front = {t.number for t in optuna.load_study(study_name=SWEEP, storage=stack.optuna_storage).best_trials}
    assert doc["source"]["optuna_trial_number"] in front
    build_network(NetworkSpec.from_dict(doc["network"]), seed=doc["seed"])
