"""Run it as a service, safely (issue 13): nothing open on the network, no secrets in the open, and
what a command starts, it stops.

* A local sweep's Ray (GCS, raylet, workers, agents) listens on loopback only (point 1).
* A sweep against the test PostgreSQL with a password in a store URL (spec file and variable) leaves
  that password, and $PGPASSWORD's, nowhere: not in the CLI's output, the saved spec, Ray's logs and
  storage, MLflow's or Optuna's databases (point 3).
* SIGINT, SIGTERM or SIGHUP to `sweeps dashboard` or `sweeps run` stops the servers and the local
  Ray it started: no process of its tree is left (point 6).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from cluster_helpers import alive, descendants, free_port, gone, is_loopback, listeners, ray_up, sigterm_when, tree
from sweep_helpers import cli_env, tiny_spec, write_spec

SWEEP = "secret-sweep"


def _cli(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _pids(procs) -> set[int]:
    return {p for p, _ in procs}


def _with_password(url: str, password: str) -> str:
    return url.replace("sweeps@", f"sweeps:{password}@")


@pytest.fixture(scope="module")
def pg_sweep(test_postgres, data_dir):
    """A 2-trial local sweep with Optuna and MLflow on the test PostgreSQL, passwords in the URLs,
    watched while it runs: every socket its process tree listens on."""
    folder = Path(tempfile.mkdtemp(prefix="sws-", dir="/tmp"))  # short: Ray's socket paths live below
    password = test_postgres.password
    decoy = "pgpw-" + secrets.token_hex(8)  # $PGPASSWORD: a value that must not show up either
    optuna_url = _with_password(test_postgres.create_database("sw_optuna"), password)
    mlflow_url = _with_password(test_postgres.create_database("sw_mlflow"), password)
    spec = tiny_spec(SWEEP)
    spec["stores"] = {"root": str(folder / "root"), "optuna_storage": optuna_url.replace("+psycopg2", "")}
    spec_file = write_spec(folder / "input", spec) if (folder / "input").mkdir() is None else None
    env = cli_env(SPARSE_SWEEPS_MLFLOW_TRACKING_URI=mlflow_url, PGPASSWORD=decoy, RAY_TMPDIR=str(folder / "rt"))
    env.pop("RAY_AUTH_MODE", None)  # Ray's default: token authentication on
    log = folder / "run.log"
    driver = _cli(["run", str(spec_file)], cwd=folder, env=env, log=log)
    seen: set[tuple[str, int, int, str]] = set()
    environs: dict[int, bytes] = {}  # the environment every process below the driver started with
    try:
        deadline = time.monotonic() + 400
        while driver.poll() is None and time.monotonic() < deadline:
            procs = _pids(tree(driver.pid))
            seen |= listeners(procs)
            for pid in procs - {driver.pid} - set(environs):
                try:
                    environs[pid] = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    pass
            time.sleep(0.5)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    # Reading it back: the password comes from the variable, as it would for `resume`.
    status = subprocess.run([sys.executable, "-m", "sweeps.cli", "status", SWEEP, "--root", str(folder / "root")],
                            cwd=folder, capture_output=True, text=True, timeout=120,
                            env=cli_env(SPARSE_SWEEPS_OPTUNA_STORAGE=optuna_url))
    yield {"folder": folder, "returncode": driver.returncode, "log": log.read_text(errors="replace"),
           "status": status, "listeners": seen, "environs": environs, "password": password, "decoy": decoy, "pg": test_postgres,
           "spec_file": spec_file}
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_the_sweep_ran_against_postgres(pg_sweep):
    assert pg_sweep["returncode"] == 0, pg_sweep["log"][-4000:]
    assert pg_sweep["status"].returncode == 0, pg_sweep["status"].stdout + pg_sweep["status"].stderr
    assert f"trials of {SWEEP} (2/2)" in pg_sweep["status"].stdout  # read back from PostgreSQL


@pytest.mark.slow
def test_a_local_sweep_listens_on_loopback_only(pg_sweep):
    seen = pg_sweep["listeners"]
    names = {comm for _, _, _, comm in seen}
    assert {"gcs_server", "raylet"} <= names, f"Ray's servers were never seen listening: {sorted(seen)}"
    open_ = sorted(s for s in seen if not is_loopback(s[0]))
    assert not open_, f"listening beyond loopback: {open_}"


def _files_with(folder: Path, needles: list[str], skip: set[Path]) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path in skip or not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits += [f"{path}: {n[:4]}..." for n in needles if n.encode() in data]
    return hits


@pytest.mark.slow
def test_no_store_password_in_the_environment_of_ray_or_its_trials(pg_sweep):
    """The store URL's password (spec file and $SPARSE_SWEEPS_MLFLOW_TRACKING_URI) reaches Ray's
    processes and the trials in memory only (issue 19): none of them starts with it in its
    environment. ($PGPASSWORD, the user's own choice of secret, is inherited as set.)"""
    environs = pg_sweep["environs"]
    assert len(environs) >= 3, "too few of the sweep's processes were seen"
    hits = [pid for pid, env in environs.items() if pg_sweep["password"].encode() in env]
    assert not hits, f"processes started with the store password in their environment: {hits}"


@pytest.mark.slow
def test_no_password_in_output_logs_files_or_stores(pg_sweep):
    needles = [pg_sweep["password"], pg_sweep["decoy"]]
    texts = {"run output": pg_sweep["log"], "status output": pg_sweep["status"].stdout + pg_sweep["status"].stderr}
    for what, text in texts.items():
        for n in needles:
            assert n not in text, f"a password appears in the {what}"
    # Every file the sweep wrote: saved spec, Ray's storage and session logs, MLflow artifacts.
    hits = _files_with(pg_sweep["folder"], needles, skip={pg_sweep["spec_file"]})
    assert not hits, hits
    saved = yaml.safe_load((pg_sweep["folder"] / "root" / "specs" / f"{SWEEP}.yaml").read_text())
    assert saved["stores"]["optuna_storage"].startswith("postgresql+psycopg2://sweeps@127.0.0.1:")
    # Both databases, whole: Optuna's study and trial attributes, MLflow's params, tags and metrics.
    pg = pg_sweep["pg"]
    for db in ("sw_optuna", "sw_mlflow"):
        dump = subprocess.run([str(pg.bin_dir / "pg_dump"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.user,
                               "-d", db, "--data-only"], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PGPASSWORD=pg.password))
        assert dump.returncode == 0, dump.stderr
        assert "INSERT" in dump.stdout or "COPY" in dump.stdout  # the dump has the data
        for n in needles:
            assert n not in dump.stdout, f"a password is stored in {db}"
    assert "secret-sweep" in dump.stdout


# -- signals ---------------------------------------------------------------------------------------

def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:  # noqa: S310 (loopback)
            return r.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_each_signal_stops_a_command_and_what_it_started(sig):
    """The handler every command runs under (`shutdown.stop_on_signals`, which `sweeps dashboard` and
    `sweeps run` share): each of the three signals interrupts the command, and a process it started
    is stopped on the way out."""
    from sweeps.shutdown import stop_on_signals

    child = None
    with pytest.raises(KeyboardInterrupt):
        with stop_on_signals(grace=5):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            os.kill(os.getpid(), sig)
            time.sleep(10)  # the signal interrupts this at once
    assert child.wait(timeout=10) is not None  # stopped by the clean-up, not left running


# An `mlflow server` start each (about 15 s on 2 quiet cores, most of it the server's own start; a
# migrated database does not shorten it). One handler serves the three signals: SIGTERM (a
# supervisor's, and `sweeps stop`'s) is in the quicker set, SIGINT and SIGHUP are extended.
@pytest.mark.slow
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, marks=pytest.mark.extended), signal.SIGTERM,
                                 pytest.param(signal.SIGHUP, marks=pytest.mark.extended)], ids=lambda s: s.name)
def test_dashboard_stops_its_server_on_a_signal(tmp_path, sig):
    root = tmp_path / "store"
    (root / "specs").mkdir(parents=True)
    write_spec(root / "specs", tiny_spec("dash"))  # a saved spec: the dashboard's store is ROOT/mlflow.db
    port = free_port()
    log = tmp_path / "dashboard.log"
    proc = _cli(["dashboard", "dash", "--root", str(root), "--port", str(port)], cwd=tmp_path, env=cli_env(), log=log)
    try:
        deadline = time.monotonic() + 120
        while not (_healthy(f"http://127.0.0.1:{port}") and "MLflow UI" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        procs = descendants(proc.pid)
        assert procs, "the dashboard started no server"
        seen = listeners(_pids(procs))
        assert any(port == p for _, p, _, _ in seen)
        assert all(is_loopback(a) for a, _, _, _ in seen), seen
        t0 = time.monotonic()
        os.kill(proc.pid, sig)  # the CLI process alone, as a terminal or a supervisor would
        proc.wait(timeout=20)
        left = gone(procs, 10)
        assert not left, f"left behind after {sig.name}: {left}"
        assert time.monotonic() - t0 < 15
        assert not _healthy(f"http://127.0.0.1:{port}")
        assert "dashboard stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for p, _ in alive(descendants(proc.pid)):
            os.kill(p, signal.SIGKILL)


@pytest.mark.slow
def test_a_local_sweep_stops_its_ray_on_sigterm_while_it_starts(tmp_path, data_dir):
    """SIGTERM while Ray starts (ray.init holds SIGTERM then): the driver, Ray's servers, agents and
    workers all end. (SIGTERM while a trial trains, then `resume`: test_sweep_faults.py.)"""
    spec = write_spec(tmp_path, tiny_spec("stopped", budget={"trials": 3, "max_concurrent": 1, "max_failures": 0}))
    log, root = tmp_path / "run.log", tmp_path / "store"
    proc = _cli(["run", str(spec), "--root", str(root)], cwd=tmp_path, env=cli_env(), log=log)
    sigterm_when(proc, log, ray_up, "Ray was up")
    assert proc.returncode != 0
