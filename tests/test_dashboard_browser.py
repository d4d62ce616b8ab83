"""A browser test: headless Chromium (Debian's package, installed by `scripts/setup.sh --test`) opens the MLflow
UI that `sweeps dashboard` starts on a finished sweep, and the sweep's HTML report."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweeps.tracking import runs as tracking

from sweep_helpers import cli_env


# End to end (a real sweep, an mlflow server and a headless browser): `pytest -m "not slow"` and
# `-m "not extended"` leave it out; CI runs it with the whole suite.
pytestmark = [pytest.mark.slow, pytest.mark.extended]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by the test set-up (`bash scripts/setup.sh --test`, which
    scripts/test.sh runs); tests never install anything."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `bash scripts/setup.sh --test` as root (or "
                    "`apt-get install chromium`), then rerun")
    return path


def _browse(chromium: str, url: str, *extra: str) -> str:
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", *extra, url],
        capture_output=True, text=True, timeout=180,
    )
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(finished_sweep):
    folder, root, _ = finished_sweep
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps.cli", "dashboard", "e2e", "--root", str(root), "--port", str(port)],
        cwd=folder, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    url, lines, deadline = None, [], time.time() + 120
    while time.time() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"MLflow UI: (http://\S+)", line)
        url = m.group(1) if m else None
    assert url, "no URL printed:\n" + "".join(lines)
    yield url, proc, port
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def test_dashboard_shows_the_experiment_parent_and_nested_runs_and_report(finished_sweep, dashboard, chromium, tmp_path):
    folder, root, _ = finished_sweep
    url, _, port = dashboard
    assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/") and "/runs?viewStateShareKey=sweeps-" in url
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("e2e")
    parent = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_KIND: "sweep"})[0]
    child = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_KIND: "trial"})[0]

    # It opens on the sweep's trials with both objectives and the searched parameters as columns: a
    # real browser (wide enough that the grid draws every column) waits for the runs to arrive.
    import asyncio

    from cdp import chromium_page

    async def shown_text() -> str:
        async with chromium_page(chromium, tmp_path / "profile", width=2600, height=900) as tab:
            await tab.send("Page.navigate", url=url)
            want = ["val_accuracy", "val_noise_score", "percent_on", child.info.run_name]
            check = " && ".join(f"document.body.innerText.includes({w!r})" for w in want)
            await tab.wait_for(f"document.body && {check}", timeout=120)
            return await tab.evaluate("document.body.innerText")

    page = asyncio.run(shown_text())
    trials = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_KIND: "trial"})
    assert f"{len(trials)} matching runs" in page  # the trials alone: the parent run is not a row
    shot = folder / "dashboard.png"
    _browse(chromium, url, "--window-size=1400,900", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000

    base = url.split("#")[0].rstrip("/")
    run_page = _browse(chromium, f"{base}/#/experiments/{exp.experiment_id}/runs/{child.info.run_id}", "--dump-dom")
    assert child.info.run_name in run_page
    assert parent.info.run_id in run_page  # the nested run links its parent

    artifacts = _browse(chromium, f"{base}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}/artifacts",
                        "--dump-dom")
    assert "report.html" in artifacts and "pareto_front.json" in artifacts

    report = Path(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path)))
    shown = _browse(chromium, report.as_uri(), "--dump-dom")
    assert "Sweep report: e2e" in shown and "Pareto configurations" in shown
    assert shown.count('id="figure-') == 4 and shown.count('class="main-svg"') >= 4  # plotly drew every figure offline


def test_dashboard_stops_cleanly_on_ctrl_c(dashboard):
    _, proc, port = dashboard
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "dashboard stopped" in out
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the server is gone
