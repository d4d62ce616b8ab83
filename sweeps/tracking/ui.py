"""`sweeps dashboard`: the MLflow UI on a sweep's tracking store, with light settings.

A local store (SQLite, or a database) gets its own `mlflow server` bound to loopback (no job
runner, one worker: 0.5 GB and a few seconds instead of 3 GB); a remote tracking server is only
linked to. The MLflow UI has no login, so it never listens beyond this machine: reach it from
elsewhere through an SSH tunnel. A database password reaches the server as $PGPASSWORD, never on
its command line. `Dashboard.stop` ends the server and every process under it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from sweeps.errors import UserError
from sweeps.shutdown import alive, descendants
from sweeps.stores.preflight import mlflow_problem
from sweeps.stores.secrets import password_env

__all__ = ["Dashboard", "start_dashboard", "experiment_url", "sweep_view_url", "child_env"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment_url(base: str, experiment_id: str | None) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs" if experiment_id else base


def sweep_view_url(client, base: str, experiment_id: str, sweep: str, params: list[str]) -> str:
    """The runs page of ``sweep`` opened where a sweep's user wants it: its trials (not the one
    collapsed parent row), both objectives and the searched parameters as columns, highest noise
    score first. The view is saved as MLflow's own shared view (an experiment tag; written again,
    idempotently, each time), so the UI's controls all still work from there."""
    import hashlib
    import json

    from sweeps.tracking import mlflow_private
    from sweeps.tracking.runs import TAG_BASELINE, TAG_KIND, TAG_MODEL_SEED, TAG_SWEEP

    view = mlflow_private.shared_view(
        f"tags.`{TAG_SWEEP}` = '{sweep}' AND tags.`{TAG_KIND}` = 'trial'", "val_noise_score",
        ["val_accuracy", "val_noise_score", "test_accuracy", "test_noise_score"], [f"search.{p}" for p in params],
        [TAG_BASELINE, TAG_MODEL_SEED])
    key = "sweeps-" + hashlib.sha256(sweep.encode()).hexdigest()[:16]
    client.set_experiment_tag(experiment_id, mlflow_private.SHARED_VIEW_TAG + key, json.dumps(view))
    return f"{experiment_url(base, experiment_id)}?{mlflow_private.SHARED_VIEW_PARAM}={key}"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _signal_all(pgid: int, pids: set[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen | None

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server, its uvicorn worker and anything else under it: SIGTERM, then SIGKILL
        for what is left after ``grace`` seconds (uvicorn waits on open browser connections)."""
        if self.process is None:
            return
        pids = descendants(self.process.pid)  # before anything exits and is reparented
        if self.process.poll() is None or pids:
            _signal_all(self.process.pid, pids, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (self.process.poll() is None or alive(pids)):
                time.sleep(0.1)
            _signal_all(self.process.pid, alive(pids), signal.SIGKILL)
            if self.process.poll() is None:
                _signal_all(self.process.pid, set(), signal.SIGKILL)
        self.process.wait()


def child_env(tracking_uri: str) -> dict[str, str]:
    """The environment of the `mlflow server` on ``tracking_uri``: this process's (which holds no
    store password: those stay in memory), light settings, and the database password as $PGPASSWORD
    (or $MYSQL_PWD) for that server alone."""
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false",
               **password_env(tracking_uri))
    env.pop("MLFLOW_TRACKING_AUTH", None)  # this client's request auth: nothing a server uses
    return env


def start_dashboard(tracking_uri: str, host: str = "127.0.0.1", port: int | None = None, timeout: float = 90) -> Dashboard:
    """Start the MLflow UI on ``tracking_uri`` (or just link to it when it is a server)."""
    if tracking_uri.startswith(("http://", "https://")):
        return Dashboard(tracking_uri, None)
    if host not in LOOPBACK_HOSTS:
        raise UserError(
            f"--host {host}: the MLflow UI has no login, so it listens on this machine only (127.0.0.1); "
            f"from another machine use an SSH tunnel: ssh -L 5000:127.0.0.1:5000 THIS_HOST"
        )
    port = port or _free_port()
    env = child_env(tracking_uri)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://{host}:{port}"
    dash = Dashboard(base, proc)
    atexit.register(dash.stop)  # whatever ends this process normally (an exception, a signal) stops it
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            if mlflow_problem(base, timeout=2) is None:
                return dash
            time.sleep(0.5)
    except BaseException:
        dash.stop()
        raise
    dash.stop()
    raise RuntimeError(f"mlflow server did not answer on {base} within {timeout:.0f}s")
