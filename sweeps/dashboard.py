"""`sweeps dashboard`: the MLflow UI on a sweep's tracking store, with light settings.

A local store (SQLite) gets its own `mlflow server` bound to 127.0.0.1 (no job runner, one
worker: 0.5 GB and a few seconds instead of 3 GB); a remote tracking server is only linked to.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

__all__ = ["Dashboard", "start_dashboard", "experiment_url"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment_url(base: str, experiment_id: str | None) -> str:
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs" if experiment_id else base


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen | None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the server and its worker
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_dashboard(tracking_uri: str, host: str = "127.0.0.1", port: int | None = None, timeout: float = 90) -> Dashboard:
    """Start the MLflow UI on ``tracking_uri`` (or just link to it when it is a server)."""
    if tracking_uri.startswith(("http://", "https://")):
        return Dashboard(tracking_uri, None)
    port = port or _free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://{host}:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return Dashboard(base, proc)
        except OSError:
            time.sleep(0.5)
    Dashboard(base, proc).stop()
    raise RuntimeError(f"mlflow server did not answer on {base} within {timeout:.0f}s")
