"""Sweeps as Ray jobs (issue 13, point 5): `sweeps submit` sends the spec through Ray's job
submission API to a loopback Ray head (token auth on, its dashboard on 127.0.0.1); the sweep runs
there as a job, so killing the submitting client changes nothing: it finishes with every trial
accounted for. `sweeps jobs` and `sweeps logs` read it back; `sweeps stop` ends a job cleanly (no
trial left RUNNING) and `sweeps resume` continues it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from optuna.trial import TrialState

from cluster_helpers import TOKEN_ENV, RayNode, base_env, free_port
from sweep_helpers import study, tiny_spec, trial_runs, write_spec



def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/api/version", timeout=2).close()  # noqa: S310 (loopback)
        return True
    except urllib.error.HTTPError:
        return True  # it answers (401 without a token is an answer)
    except OSError:
        return False


@pytest.fixture(scope="module")
def head(data_dir):
    base = Path(tempfile.mkdtemp(prefix="sjobs-", dir="/tmp"))  # short: Ray's socket paths live below
    env = base_env(**TOKEN_ENV)  # Ray's token auth on: the CLI's job client must send the token
    # The head is started from the project's environment without activating it (`ray start` by its
    # path): no `python` on its PATH has the project's packages, so a job must find Ray's own.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != bin_dir)
    node = RayNode(2, base / "rt", base / "head.log", env=env, dashboard_port=free_port()).start()
    address = f"http://127.0.0.1:{node.dashboard_port}"
    try:
        deadline = time.monotonic() + 180
        while not _up(address):
            assert node.proc.poll() is None and time.monotonic() < deadline, (base / "head.log").read_text()[-3000:]
            time.sleep(1)
        yield SimpleNamespace(address=address, gcs=node.address, env=env, base=base, root=base / "root")
    finally:
        node.stop()
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # workers started under this temp dir
            try:
                if str(base).encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        shutil.rmtree(base, ignore_errors=True)


def sweeps(head, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args, "--address", head.address], cwd=head.base,
                          env=head.env, capture_output=True, text=True, timeout=timeout)


def _wait_state(head, name: str, states: set[str], timeout: float) -> str:
    deadline, out = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        proc = sweeps(head, ["jobs"])
        out = proc.stdout
        for line in out.splitlines():
            cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
            if cells[:1] == [name] and len(cells) > 1 and cells[1] in states:
                return cells[1]
        time.sleep(2)
    raise AssertionError(f"job {name} never reached {states}:\n{out}\n{sweeps(head, ['logs', name]).stdout[-3000:]}")


def _spec(head, name: str, **overrides) -> Path:
    spec = tiny_spec(name, **overrides)
    spec["stores"] = {"root": str(head.root)}  # one node: its SQLite stores and folder are the head's
    folder = head.base / "specs-in"
    folder.mkdir(exist_ok=True)
    return write_spec(folder, spec)


def test_a_job_server_that_does_not_answer_is_one_line(tmp_path):
    from sweep_helpers import run_cli

    proc = run_cli(["jobs", "--address", f"http://127.0.0.1:{free_port()}"], cwd=tmp_path, timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
    assert "no Ray job server answers" in lines[0] and "RAY_AUTH_TOKEN" in lines[0]


def test_the_job_carries_the_project_and_no_secret(tmp_path, monkeypatch):
    from sweeps.run.jobs import entrypoint, runtime_env

    monkeypatch.setenv("PGPASSWORD", "pw-not-for-jobs")
    env = runtime_env(tmp_path)
    assert env["working_dir"] == str(tmp_path)
    assert sorted(Path(p).name for p in env["py_modules"]) == ["dashboards", "sparsity", "sweeps"]
    assert "pw-not-for-jobs" not in str(env) and "PGPASSWORD" not in str(env)
    assert int(env["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"]) >= 60  # time to mark the stores on stop
    assert "sweeps.run.headcheck" in entrypoint(None) and "pw-not-for-jobs" not in entrypoint("/mnt/root")


def test_a_submitted_root_is_the_command_lines_else_the_specs_and_never_relative():
    from sweeps.errors import UserError
    from sweeps.run.jobs import job_root
    from sweeps.spec import SweepSpec

    def spec(root=None):
        doc = tiny_spec("rooted")
        if root is not None:
            doc["stores"] = {"root": root}
        return SweepSpec.from_dict(doc, environ={})  # as `sweeps submit` reads it: no local $SPARSE_SWEEPS_ROOT

    assert job_root("/srv/a", spec("/srv/b")) == "/srv/a"  # --root wins
    assert job_root(None, spec("/srv/b")) == "/srv/b"
    assert job_root(None, spec()) is None  # the head's $SPARSE_SWEEPS_ROOT, else ~/sweeps-data there
    assert job_root("~/sweeps", spec()) == "~/sweeps"
    assert job_root("/srv/a", spec("relative")) == "/srv/a"  # the spec's relative root is not used
    for given, where in (("data/sweeps", "--root data/sweeps"), (None, "stores.root relative")):
        with pytest.raises(UserError, match=f"^{where}: a relative folder would be under the job's temporary"):
            job_root(given, spec("relative"))


# End to end (a Ray head with its job server, real sweeps submitted to it): `pytest -m "not slow"`
# leaves them out; the full suite (CI) runs them.
@pytest.mark.slow
def test_a_submitted_sweep_outlives_its_client(head):
    path = _spec(head, "job-sweep")
    log = head.base / "client.log"
    with open(log, "wb") as out:
        client = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "submit", str(path), "--follow", "--address",
                                   head.address], cwd=head.base, env=head.env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "submitted sweep" not in log.read_text() and time.monotonic() < deadline:
            assert client.poll() is None, log.read_text()
            time.sleep(0.5)
        time.sleep(3)
    finally:
        os.killpg(client.pid, signal.SIGKILL)  # the submitting shell is gone
        client.wait()
    assert _wait_state(head, "job-sweep", {"SUCCEEDED", "FAILED", "STOPPED"}, 400) == "SUCCEEDED"
    trials = study(head.root, "job-sweep").get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)  # 1 searched + 1 baseline
    assert sorted(int(r.data.tags["sweeps.optuna_trial_number"]) for r in trial_runs(head.root, "job-sweep")) == [0, 1]
    logs = sweeps(head, ["logs", "job-sweep"])
    assert logs.returncode == 0 and "Pareto front of job-sweep" in logs.stdout, logs.stdout[-3000:] + logs.stderr


@pytest.mark.slow
def test_stop_ends_a_job_cleanly_and_resume_continues_it(head):
    # enough tiny trials that a busy machine's slower polling still finds one running after one ended
    path = _spec(head, "job-stop", budget={"trials": 6, "max_concurrent": 1, "max_failures": 0})
    proc = sweeps(head, ["submit", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # one trial done, the next one running
        try:
            trials = study(head.root, "job-stop").get_trials()
        except Exception:
            trials = []
        if any(t.state == TrialState.COMPLETE for t in trials) and any(t.state == TrialState.RUNNING for t in trials):
            break
        time.sleep(1)
    stopped = sweeps(head, ["stop", "job-stop"], timeout=300)
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr
    trials = study(head.root, "job-stop").get_trials()
    assert trials and not [t.number for t in trials if t.state == TrialState.RUNNING]  # nothing left running
    assert not [r for r in trial_runs(head.root, "job-stop") if r.info.status == "RUNNING"]
    resumed = subprocess.run([sys.executable, "-m", "sweeps.cli", "resume", "job-stop", "--root", str(head.root),
                              "--address", head.gcs], cwd=head.base, env=head.env, capture_output=True, text=True,
                             timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = study(head.root, "job-stop").get_trials()
    assert len(trials) >= 4 and all(t.state.is_finished() for t in trials)
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 3


@pytest.mark.slow
def test_a_sweep_submitted_with_root_lands_there_and_reads_back(head):
    """`--root` decides where a submitted sweep lands (over the spec's own root): the sweep is
    complete there when its job ends, nothing of it is in Ray's runtime-environment folders, and
    `best --root` and `resume --root` read it back. Each trial tagged the device it ran on."""
    root = head.base / "landed"
    spec = tiny_spec("job-root")
    spec["stores"] = {"root": "spec-says-here"}  # relative: would land in the job's temporary folder
    folder = head.base / "specs-in"
    folder.mkdir(exist_ok=True)
    path = write_spec(folder, spec)
    proc = sweeps(head, ["submit", str(path), "--root", str(root)])
    assert proc.returncode == 0 and "submitted sweep" in proc.stdout, proc.stdout + proc.stderr
    assert _wait_state(head, "job-root", {"SUCCEEDED", "FAILED", "STOPPED"}, 400) == "SUCCEEDED"
    assert (root / "specs" / "job-root.yaml").is_file() and (root / "optuna.db").is_file()
    trials = study(root, "job-root").get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE for t in trials)
    runs = trial_runs(root, "job-root")
    assert len(runs) == 2 and {r.data.tags.get("sweeps.device") for r in runs} == {"cpu"}
    assert not list((head.base / "rt").rglob("optuna.db")) and not list((head.base / "rt").rglob("spec-says-here"))
    best = subprocess.run([sys.executable, "-m", "sweeps.cli", "best", "job-root", "--root", str(root), "--out",
                           str(head.base / "job-root-best.yaml")], cwd=head.base, env=head.env, capture_output=True,
                          text=True, timeout=120)
    assert best.returncode == 0 and (head.base / "job-root-best.yaml").is_file(), best.stdout + best.stderr
    resumed = subprocess.run([sys.executable, "-m", "sweeps.cli", "resume", "job-root", "--root", str(root),
                              "--address", head.gcs], cwd=head.base, env=head.env, capture_output=True, text=True,
                             timeout=400)
    assert resumed.returncode == 0 and "Pareto front of job-root" in resumed.stdout, resumed.stdout[-3000:]
    assert len(study(root, "job-root").get_trials()) == 2  # finished trials are not rerun
