"""Cluster mode with a second machine that shares nothing with the driver's: its Ray worker node runs
in a network namespace of its own (its own address on a veth pair, not loopback) and a mount
namespace of its own (its own empty home, temp and data folders; the driver's folders hidden), so
the only paths between the two machines are the cluster's services:

* Ray, with token authentication, its head listening on this side's veth address;
* PostgreSQL (Optuna and MLflow's backend) on this side's veth address, password auth;
* the MLflow tracking server (`--serve-artifacts`): trials upload artifacts over HTTP;
* the data, staged into the worker's own data folder (mounted at the data root's path, as a real
  cluster mounts its data volume at the same path on every node);
* and one shared volume for Ray's storage (trial checkpoints), declared
  `stores.shared_filesystem: true` as an NFS volume would be: with no object store on this machine
  (s3://, gs://) it is the one way Ray moves a checkpoint between nodes.

What it proves: a small MNIST sweep run with `sweeps run --address` runs trials on both machines
(their node addresses in MLflow and in Tune's results), each once in Optuna and once in MLflow; the
worker machine wrote nothing on the driver's side; in a second sweep, losing the worker node
mid-trial (SIGKILL to its raylet, agents and workers) leaves a sweep that completes on the head with
every trial once in each store, none RUNNING. A last case, a worker machine without data, must fail
at once with one line naming the node and the fix (`sweeps data stage`), never retried there.

Needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN (`ip netns add`, `unshare --mount`): elsewhere it
skips, saying so. Everything it makes is removed at the end, failures included: the processes, the
veth pair and the namespace (checked), and its folders (under the suite's scratch TMPDIR).
docs/guide/testing-a-cluster.md describes it.
"""

from __future__ import annotations

import ipaddress
import json
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
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeps.tracking import runs as tracking

from cluster_helpers import (QUIET_ENV, TOKEN_ENV, MlflowServer, Postgres, RayNode, _listening, _wait, alive_nodes,
                             base_env, free_cpus, ensure_postgres, is_loopback, listeners, logs_tail, stop_tree, tree,
                             without_sweeps_env)
from netns_helpers import Veth, namespaces_unavailable, worker_wrap
from sweep_helpers import tiny_spec, write_spec

# End to end, like tests/test_cluster_multinode.py: `-m "not extended"` leaves it out; CI runs it.
pytestmark = [pytest.mark.slow, pytest.mark.extended]

NODE_TAG = "sweeps.node_id"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz")


def _kill_leftovers(marker: str) -> None:
    """Last resort: SIGKILL any process whose command line names this test's own folder."""
    me = os.getpid()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            if pid != me and marker.encode() in cmdline.read_bytes():
                os.kill(pid, 9)
        except (OSError, ValueError):
            continue


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


@pytest.fixture(scope="module")
def stack(data_dir):
    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        import psycopg2  # noqa: F401  (Optuna's and MLflow's PostgreSQL driver)
    except ImportError:
        pytest.fail("psycopg2 is not installed: requirements.lock (and pyproject's dependencies) need psycopg2-binary")
    try:
        pg_bin = ensure_postgres()
    except RuntimeError as e:
        pytest.fail(str(e))
    # Short names: Ray's socket paths live below. Four parts, each with one owner:
    base = Path(tempfile.mkdtemp(prefix="snn-"))
    driver_side = base / "d"  # the driver's machine: PostgreSQL, MLflow's artifacts, the stores root, logs
    head_tmp = base / "r"  # the head's Ray temp dir (Ray gives every node the head's path: node-local there)
    volume = base / "v"  # the shared volume: Ray's storage (trial checkpoints), seen by both machines
    for d in (driver_side, head_tmp, volume):
        d.mkdir()
    os.chmod(base, 0o755)  # PostgreSQL runs as another user and reaches its folder below
    os.chmod(driver_side, 0o755)
    veth = Veth()
    pg = server = head = None
    stack = None
    try:
        veth.create()
        net = str(ipaddress.ip_interface(f"{veth.host_ip}/30").network)
        pg = Postgres(pg_bin, base=driver_side / "pg", host=veth.host_ip, clients=(net,))
        pg.start()
        mlflow_db, optuna_url = pg.create_database("mlflow"), pg.create_database("optuna")
        server = MlflowServer(mlflow_db, driver_side / "mlartifacts", driver_side / "mlflow.log", env=pg.env,
                              host=veth.host_ip).start(wait=False)
        # The nodes' environment: Ray's token auth on, no SPARSE_SWEEPS_* and no store password (trials
        # get those from the driver, in memory). A quick verdict on a lost node, as in the two-node test.
        # Ray's metrics endpoints (plain HTTP, no auth) listen on every interface of a node whose
        # address is not loopback: metrics collection off, only Ray's token-checked gRPC servers do.
        node_env = without_sweeps_env(base_env(**TOKEN_ENV, RAY_enable_metrics_collection="false"))
        node_env.pop("PGPASSWORD", None)
        head_env = dict(node_env, HOME=str(driver_side / "head-home"), RAY_health_check_initial_delay_ms="1000",
                        RAY_health_check_period_ms="1000", RAY_health_check_timeout_ms="1000",
                        RAY_health_check_failure_threshold="3")
        (driver_side / "head-home").mkdir()
        head = RayNode(1, head_tmp, driver_side / "ray-head.log", env=head_env, node_ip=veth.host_ip).start()
        _wait("ray head (GCS port)", lambda: _listening(head.address), 180, proc=head.proc, log=head.log)
        veth.reachable(head.gcs_port)  # the worker's namespace reaches the head through the veth pair
        server.wait()
        storage = optuna.storages.RDBStorage(optuna_url, engine_kwargs={"connect_args": {"password": pg.password}})
        stack = SimpleNamespace(
            base=base, driver_side=driver_side, head_tmp=head_tmp, volume=volume, veth=veth, pg=pg, server=server,
            head=head, head_id=None, node_env=node_env, data_dir=data_dir, optuna_url=optuna_url,
            optuna_storage=storage, root=driver_side / "root", workers=[],
        )
        stack.head_id = _node_ids(stack)[veth.host_ip]
        yield stack
    finally:
        for w in (stack.workers if stack is not None else []):
            w.stop()
        if head is not None:
            head.stop()
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()
        left = veth.delete()  # what is still in the namespace, the veth pair, the namespace
        _kill_leftovers(str(base))
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"left behind: {left}"


def _node_ids(stack) -> dict[str, str]:
    """node address -> Ray node id of the cluster's live nodes."""
    return {n["node_ip"]: n["node_id"] for n in alive_nodes(stack.head.address, stack.node_env)}


def start_worker(stack, name: str, data: bool = True) -> SimpleNamespace:
    """A worker node on the second machine: in the veth namespace, its own home, temp and Ray folders,
    the driver's folders (and home) hidden, and its own data folder at the data root's path: a copy
    of MNIST when ``data``, else empty (a machine nobody staged the data on)."""
    own = stack.base / name
    for sub in ("home", "tmp", "ray", "data"):
        (own / sub).mkdir(parents=True)
    if data:
        # What a user does on a new machine: copy the four MNIST files into its own data folder.
        # (`sweeps data stage` does this where it exists; the files are the same either way.)
        raw = own / "data" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for f in MNIST_FILES:
            shutil.copyfile(stack.data_dir / "MNIST" / "raw" / f, raw / f)
    hide = [stack.driver_side]
    home = Path.home()
    needed = [Path(sys.prefix), Path(sys.executable).resolve(), Path.cwd(), stack.base, stack.data_dir,
              *(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    if not any(_inside(p.resolve(), [home]) for p in needed):
        hide.append(home)  # the driver's ~/.ray, ~/.cache (extracted MNIST) ...
    binds = {stack.head_tmp: own / "ray", stack.data_dir: own / "data"}
    # Only what a fresh machine's environment holds, with the cluster's token: no SPARSE_SWEEPS_*,
    # no store password, none of the driver's folders.
    env = {k: v for k, v in stack.node_env.items() if k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL")
           or k.startswith("RAY_") or k in QUIET_ENV}
    env.update(HOME=str(own / "home"), TMPDIR=str(own / "tmp"), RAY_TMPDIR=str(own / "tmp"))
    node = RayNode(1, own / "ray", own / "ray-worker.log", head_address=stack.head.address, env=env,
                   node_ip=stack.veth.ns_ip, wrap=worker_wrap(stack.veth, hide, binds, hostname=f"{stack.veth.name}-{name}"))
    stack.workers.append(node)
    node.start()
    ids = _wait("the worker node to join", lambda: _node_ids(stack).get(stack.veth.ns_ip), 180, interval=2,
                proc=node.proc, log=node.log)
    return SimpleNamespace(node=node, own=own, node_id=ids, hidden=hide, binds=binds, hostname=f"{stack.veth.name}-{name}")


def _raylet(worker) -> int:
    raylet = [p for p, _ in tree(worker.node.proc.pid) if _comm(p) == "raylet"]
    assert raylet, "the worker node's raylet is not running"
    return raylet[0]


def _view(worker, path: Path) -> Path:
    """``path`` as the worker machine sees it (through its raylet's root, in its mount namespace)."""
    return Path(f"/proc/{_raylet(worker)}/root") / str(path).lstrip("/")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def spec_for(stack, name: str, **overrides) -> dict:
    spec = tiny_spec(name, **overrides)
    spec["resources"] = {"cpus": 1}
    spec["stores"] = {
        "root": str(stack.root),
        "mlflow_tracking_uri": stack.server.uri,
        "optuna_storage": stack.optuna_url,
        "ray_storage": str(stack.volume),
        "shared_filesystem": True,  # the volume: mounted on both machines (the stores are servers)
    }
    return spec


def driver_env(stack) -> dict[str, str]:
    """The driver's: the store password (a cluster's secret), the cluster's token, the data root;
    no cache setting, so each machine extracts MNIST into its own home."""
    env = base_env(**stack.pg.env, **TOKEN_ENV)
    env.pop("SPARSE_SWEEPS_CACHE", None)
    env["SPARSE_SWEEPS_DATA"] = str(stack.data_dir)
    return env


def start_sweep(stack, spec: dict) -> SimpleNamespace:
    folder = stack.driver_side / spec["name"]
    folder.mkdir()
    path = write_spec(folder, spec)
    log = folder / "driver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "run", str(path), "--address", stack.head.address],
                                cwd=folder, env=driver_env(stack), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return SimpleNamespace(proc=proc, log=log, name=spec["name"], t0=time.monotonic())


def runs_of(stack, name: str) -> list:
    client = MlflowClient(stack.server.uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return []
    return tracking.find_runs(client, exp.experiment_id, {tracking.TAG_SWEEP: name, tracking.TAG_KIND: "trial"})


def trials_of(stack, name: str) -> list:
    return optuna.load_study(study_name=name, storage=stack.optuna_storage).get_trials()


def tune_node_ips(stack, name: str) -> set[str]:
    """The node addresses in Tune's own results (result.json of each trial, in the shared volume)."""
    ips = set()
    for f in (stack.volume / name).glob("*/result.json"):
        for line in f.read_text().splitlines():
            if line.strip():
                ips.add(json.loads(line).get("node_ip"))
    return ips


def _diagnostics(stack, sweep, workers=()) -> str:
    try:
        out = f"\n--- driver ---\n{sweep.log.read_text(errors='replace')[-5000:]}"
    except OSError as e:
        out = f"\n(no driver log: {e}; {sorted(str(p) for p in stack.base.rglob('*') if 'session_' not in str(p))[:80]})"
    for err in sorted((stack.volume / sweep.name).glob("*/error.txt")):
        out += f"\n--- {err} ---\n{err.read_text(errors='replace')[-2000:]}"
    try:
        out += "\n--- trial runs (number, status, node) ---\n" + "\n".join(
            f"{r.data.tags.get(tracking.TAG_OPTUNA)} {r.info.status} {r.data.tags.get(NODE_TAG)}"
            for r in runs_of(stack, sweep.name))
    except Exception as e:  # diagnostics must not hide the failure they describe
        out += f"\n(no trial runs: {e})"
    return out + logs_tail(stack.head.log, stack.server.log, *(w.node.log for w in workers))


# -- a sweep across both machines, then the loss of the worker's ---------------------------------------

SWEEP = "sn-sweep"


def test_the_services_listen_on_the_veth_with_auth(stack):
    ip = stack.veth.host_ip
    pg_pid = int((stack.pg.data / "postmaster.pid").read_text().split()[0])
    assert {a for a, _, _, _ in listeners({pg_pid})} == {ip}
    assert {a for a, _, _, _ in listeners({p for p, _ in tree(stack.server.proc.pid)})} == {ip}
    head = listeners({p for p, _ in tree(stack.head.proc.pid)})
    assert stack.head.gcs_port in {port for _, port, _, _ in head}, head
    for addr, port, _, comm in head:
        if is_loopback(addr) or addr == ip:
            continue
        assert addr in ("0.0.0.0", "::"), (addr, port, comm)
        if port in RAY_METRICS_PORTS:  # known: read-only metrics (see RAY_METRICS_PORTS)
            assert _http_body(port).startswith("# "), (addr, port, comm)
            continue
        # Beyond loopback and the veth: Ray's gRPC servers alone (token-checked, below), no HTTP server.
        assert comm in ("raylet", "gcs_server") or comm.startswith("ray::"), (addr, port, comm)
        assert _http_body(port) is None, f"{comm} serves HTTP without auth on {addr}:{port}"
    # Ray's token auth is real: a driver with a wrong token is refused by the head's GCS.
    wrong = dict(stack.node_env, RAY_AUTH_TOKEN="0" * 64)
    probe = subprocess.run([sys.executable, "-c", "import ray, sys; ray.init(address=sys.argv[1]); print('IN')",
                            stack.head.address], env=wrong, capture_output=True, text=True, timeout=120)
    assert probe.returncode != 0 and "IN" not in probe.stdout.split(), probe.stdout + probe.stderr
    assert any(w in (probe.stdout + probe.stderr).lower() for w in ("token", "auth")), probe.stderr[-2000:]


# Ray's dashboard and autoscaler processes on the head serve Prometheus metrics (plain HTTP, read-only,
# no auth) at these fixed ports on every interface when the head's address is not loopback, whatever
# RAY_enable_metrics_collection says. Known and documented (docs/guide/testing-a-cluster.md: firewall
# them on a real cluster); any other listener beyond loopback and the veth that answers HTTP fails.
RAY_METRICS_PORTS = {int(os.environ.get("DASHBOARD_METRIC_PORT", "44227")),
                     int(os.environ.get("AUTOSCALER_METRIC_PORT", "44217"))}


def _http_body(port: int) -> str | None:
    """The start of what an HTTP/1 server on 127.0.0.1:port answers to GET /, None when nothing
    answers HTTP/1 there (a gRPC server answers with HTTP/2 frames)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read(200).decode(errors="replace")
    except (http.client.HTTPException, OSError):
        return None
    finally:
        conn.close()


def _views(stack, worker, sweep_name: str) -> dict:
    """What the worker machine sees, while it is up: its own data and host name, none of the
    driver's folders (anything it wrote to a driver-side path would be in its empty tmpfs there)."""
    st = _view(worker, stack.data_dir).stat()
    return {
        "worker_data": sorted(p.name for p in _view(worker, stack.data_dir / "MNIST" / "raw").iterdir()),
        "worker_data_root": sorted(p.name for p in _view(worker, stack.data_dir).iterdir()),
        "worker_data_root_is": (st.st_dev, st.st_ino),
        "worker_hostname": subprocess.run(["nsenter", "-t", str(_raylet(worker)), "-u", "hostname"],
                                          capture_output=True, text=True, timeout=20).stdout.strip(),
        "driver_side_seen": sorted(str(p) for p in _view(worker, stack.driver_side).rglob("*")),
        "volume_seen": any(_view(worker, stack.volume / sweep_name).iterdir()),
    }


def _tiny(spec: dict) -> dict:
    # A few hundred images, 1 epoch: a trial lasts seconds (set-up, training, scoring, logging).
    spec["dataset"] = {"name": "mnist", "train_limit": 600, "eval_limit": 200}
    return spec


@pytest.fixture(scope="module")
def worker1(stack):
    return start_worker(stack, "w1")


@pytest.fixture(scope="module")
def both(stack, worker1):
    """A 7-trial sweep (the dense baseline and 6 searched), 1 CPU per trial, 2 at a time, over the
    head and the worker machine (1 CPU each): each node takes one of the first two trials, so the
    worker machine runs at least one to the end."""
    sweep = start_sweep(stack, _tiny(spec_for(stack, SWEEP, budget={"trials": 6, "max_concurrent": 2,
                                                                    "max_failures": 0})))
    try:
        sweep.proc.wait(timeout=300)
    finally:
        stop_tree(sweep.proc)
    seen = _views(stack, worker1, SWEEP)
    seen.update(returncode=sweep.proc.returncode, sweep=sweep, worker=worker1, seconds=time.monotonic() - sweep.t0)
    return seen


LOSS = "sn-loss"


@pytest.fixture(scope="module")
def node_loss(stack, worker1, both):
    """A 3-trial sweep; as soon as a trial runs on the worker machine, its node is killed (SIGKILL to
    its raylet, agents and trial workers): mid-trial, its first epoch not reported. It starts once
    both machines' CPUs are free again (the last sweep's actors released), so that one of its
    first two trials must land on the worker."""
    _wait("both CPUs free after the last sweep", lambda: free_cpus(stack.head.address, stack.node_env) >= 2, 120,
          interval=2)
    sweep = start_sweep(stack, _tiny(spec_for(stack, LOSS, budget={"trials": 2, "max_concurrent": 2,
                                                                   "max_failures": 2})))
    seen = None
    try:
        deadline = time.monotonic() + 240
        while seen is None and time.monotonic() < deadline and sweep.proc.poll() is None:
            time.sleep(0.3)
            running = [r for r in runs_of(stack, LOSS)
                       if r.data.tags.get(NODE_TAG) == worker1.node_id and r.info.status == "RUNNING"]
            if running:
                seen = {"victim": int(running[0].data.tags[tracking.TAG_OPTUNA]), "victim_run": running[0].info.run_id}
        assert seen is not None, ("no trial ran on the worker machine "
                                  f"(driver exit {sweep.proc.poll()})" + _diagnostics(stack, sweep, [worker1]))
        worker1.node.kill()
        seen["killed_after_s"] = time.monotonic() - sweep.t0
        seen["complete_at_kill"] = {t.number: t.values for t in trials_of(stack, LOSS) if t.state == TrialState.COMPLETE}
        sweep.proc.wait(timeout=300)
    finally:
        stop_tree(sweep.proc)
    seen.update(returncode=sweep.proc.returncode, sweep=sweep, worker=worker1, seconds=time.monotonic() - sweep.t0)
    return seen


def test_trials_ran_on_both_machines(stack, both):
    assert both["returncode"] == 0, _diagnostics(stack, both["sweep"], [both["worker"]])
    # MLflow's record of where each trial ran (Ray node ids), and Tune's own results, which name the
    # machines by address: the head's veth side and the namespace's.
    assert {r.data.tags[NODE_TAG] for r in runs_of(stack, SWEEP)} == {stack.head_id, both["worker"].node_id}
    assert tune_node_ips(stack, SWEEP) == {stack.veth.host_ip, stack.veth.ns_ip}


def _landed_once(stack, name: str, n: int) -> None:
    trials = trials_of(stack, name)  # Optuna, on PostgreSQL
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.number, t.state) for t in trials]
    runs = runs_of(stack, name)  # MLflow, through its server
    assert sorted(int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs) == list(range(n))
    assert all(r.info.status == "FINISHED" for r in runs), [(r.data.tags[tracking.TAG_OPTUNA], r.info.status) for r in runs]
    client = MlflowClient(stack.server.uri)
    for r in runs:  # artifacts went to the server over HTTP, from both machines
        assert r.info.artifact_uri.startswith("mlflow-artifacts:"), r.info.artifact_uri
        assert "noise_curve.json" in {a.path for a in client.list_artifacts(r.info.run_id)}


def test_every_trial_landed_once_and_none_is_running(stack, both):
    _landed_once(stack, SWEEP, 7)


def test_the_lost_trial_finished_on_the_head_once(stack, node_loss):
    assert node_loss["returncode"] == 0, _diagnostics(stack, node_loss["sweep"], [node_loss["worker"]])
    _landed_once(stack, LOSS, 3)
    run = MlflowClient(stack.server.uri).get_run(node_loss["victim_run"])  # the same run, not a second one
    assert run.info.status == "FINISHED"
    assert run.data.tags[NODE_TAG] == stack.head_id  # where it resumed
    values = {t.number: t.values for t in trials_of(stack, LOSS)}
    for n, v in node_loss["complete_at_kill"].items():
        assert values[n] == v  # nothing finished before the loss was redone


def test_the_worker_machine_shares_no_folder_with_the_driver(stack, both):
    assert both["worker_data"] == sorted(MNIST_FILES)  # its own copy, at the data root's path
    assert both["worker_data_root"] == ["MNIST"]
    own = both["worker"].own
    st = (own / "data").stat()
    assert both["worker_data_root_is"] == (st.st_dev, st.st_ino)  # its own folder, not the driver's
    assert (st.st_dev, st.st_ino) != (stack.data_dir.stat().st_dev, stack.data_dir.stat().st_ino)
    assert both["driver_side_seen"] == []  # it wrote nothing on the driver's side
    assert both["worker_hostname"] == both["worker"].hostname != os.uname().nodename  # its own name
    assert both["volume_seen"]  # the one shared folder: Ray's storage
    assert any((own / "ray").glob("session_*/logs/raylet.out"))  # Ray's node files: its own folder
    assert any((own / "home" / ".cache" / "sparse-sweeps").rglob("train-images-idx3-ubyte"))  # its own cache


# -- a worker machine without the data ------------------------------------------------------------------

def test_a_worker_without_data_fails_at_once_in_one_line(stack):
    """Needs the trial's own data check (a non-retryable failure naming the node and the fix)."""
    for w in stack.workers:  # one worker node at a time on the second machine: now one without data
        w.stop()
    worker = start_worker(stack, "w2", data=False)
    name = "sn-nodata"
    sweep = start_sweep(stack, spec_for(stack, name, budget={"trials": 3, "max_concurrent": 2, "max_failures": 2}))
    try:
        sweep.proc.wait(timeout=180)
    finally:
        stop_tree(sweep.proc)
    seconds = time.monotonic() - sweep.t0
    out = sweep.log.read_text(errors="replace")
    diag = _diagnostics(stack, sweep, [worker])
    assert sweep.proc.returncode not in (0, None), diag
    assert seconds < 150, f"took {seconds:.0f}s" + diag
    lines = [ln for ln in out.splitlines() if stack.veth.ns_ip in ln and "sweeps data stage" in ln]
    assert lines, "no line names the worker's address and `sweeps data stage`" + diag
    # The trial that landed there failed before it trained or opened a run: Optuna records it FAIL with
    # the one line; no MLflow run ever started on that node.
    failed = [t for t in trials_of(stack, name) if t.state == TrialState.FAIL
              and stack.veth.ns_ip in str(t.user_attrs.get("fail_reason", ""))]
    assert failed, diag + f"\n{[(t.number, t.state, t.user_attrs.get('fail_reason')) for t in trials_of(stack, name)]}"
    for t in failed:
        error = t.user_attrs["fail_reason"]
        assert "sweeps data stage" in error and "\n" not in error.strip(), error
    assert not [r for r in runs_of(stack, name) if r.data.tags.get(NODE_TAG) == worker.node_id], diag
    # Never retried: each trial's error file (Tune's) holds one failure at most.
    for err in (stack.volume / name).glob("*/error.txt"):
        assert err.read_text(errors="replace").count("Failure #") <= 1, err.read_text()[-3000:]
