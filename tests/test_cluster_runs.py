"""Sweeps on a cluster run where and as the user said, and fail loudly when they cannot:

* a local sweep starts its own loopback Ray, whatever Ray's `ray_current_cluster` file or a head
  running on this machine say;
* SQLite stores and local folders are refused, in one line, on a cluster that has or can get more
  than one node (several nodes, an autoscaler, a head with 0 CPUs), before anything is written;
* the root a sweep's stores live under follows one rule for every command;
* `max_concurrent: auto` fills the cluster's GPUs (or CPUs), counting what the autoscaler can add;
* a trial granted a GPU that torch cannot use fails in one line; the head's Python is checked
  before a submitted sweep starts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from cluster_helpers import QUIET_ENV, RayNode, _listening, alive_nodes, base_env
from sweep_helpers import run_cli, tiny_spec, trial_runs, write_spec

REPO = Path(__file__).resolve().parents[1]


# -- the root: one rule ----------------------------------------------------------------------------

def test_the_root_rule_command_line_then_spec_then_environment_then_default(tmp_path, monkeypatch):
    from sweeps.results.read import saved_spec
    from sweeps.spec import SweepSpec, load_spec

    monkeypatch.setenv("SPARSE_SWEEPS_ROOT", "/env/root")
    bare, rooted = tiny_spec("r1"), dict(tiny_spec("r2"), stores={"root": "/spec/root"})
    assert SweepSpec.from_dict(bare).stores.root == "/env/root"
    assert SweepSpec.from_dict(rooted).stores.root == "/spec/root"
    assert SweepSpec.from_dict(rooted, stores_root="/cli/root").stores.root == "/cli/root"
    assert SweepSpec.from_dict(bare, environ={}).stores.root == "sweeps-data"
    monkeypatch.delenv("SPARSE_SWEEPS_ROOT")
    assert SweepSpec.from_dict(bare).stores.root == "sweeps-data"
    # A saved spec (what `resume`, `best` and `status` read) takes --root over the root it holds.
    (tmp_path / "moved" / "specs").mkdir(parents=True)
    (tmp_path / "moved" / "specs" / "r2.yaml").write_text(yaml.safe_dump(rooted))
    assert saved_spec("r2", str(tmp_path / "moved")).stores.root == str(tmp_path / "moved")
    assert load_spec(tmp_path / "moved" / "specs" / "r2.yaml").stores.root == "/spec/root"


# -- max_concurrent: auto --------------------------------------------------------------------------

def test_max_concurrent_auto_is_the_default_and_the_paper_presets_setting():
    from sweeps.spec import Budget, load_spec

    assert Budget().max_concurrent == "auto" and Budget().concurrency(7) == 7 and Budget().concurrency(0) == 1
    assert Budget(max_concurrent=2).concurrency(7) == 2
    for preset in ("mnist-paper", "gsc-paper"):
        assert load_spec(preset).budget.is_auto
    assert load_spec("mnist-quick").budget.max_concurrent == 2
    from sweeps.errors import SpecError

    for bad in (0, "many", True, 1.5):
        with pytest.raises(SpecError, match="budget.max_concurrent"):
            Budget(max_concurrent=bad)


@pytest.mark.parametrize("up,most,gpus,cpus,expected", [
    ({"CPU": 8.0}, {"CPU": 72.0, "GPU": 8.0}, 0.25, 2, 32),  # GPU workers autoscale from 0: 8 / 0.25
    ({"CPU": 8.0}, {"CPU": 72.0, "GPU": 8.0}, 0.5, 2, 16),
    ({"CPU": 8.0, "GPU": 2.0}, None, 0.5, 1, 4),  # no autoscaler: the GPUs that are up
    ({"CPU": 8.0}, {"CPU": 72.0}, 0.0, 2, 36),  # CPU trials: the most CPUs there can be, 72 / 2
    ({"CPU": 3.0}, None, 0.0, 2, 1),
    ({"CPU": 0.0}, None, 0.0, 1, 1),  # at least one
])
def test_auto_fills_the_gpus_or_cpus_the_cluster_has_or_can_get(monkeypatch, up, most, gpus, cpus, expected):
    import ray

    from sweeps.run import ray_private, ray_start
    from sweeps.spec import SweepSpec

    monkeypatch.setattr(ray, "cluster_resources", lambda: up)
    monkeypatch.setattr(ray_private, "autoscaling_resources", lambda: most)
    spec = SweepSpec.from_dict(dict(tiny_spec("auto"), budget={"trials": 4}, resources={"cpus": cpus, "gpus": gpus}))
    assert spec.budget.is_auto and ray_start.concurrency(spec) == expected
    fixed = SweepSpec.from_dict(dict(tiny_spec("two"), resources={"cpus": cpus, "gpus": gpus}))
    assert ray_start.concurrency(fixed) == 2


def test_the_replay_runs_auto_as_the_presets_fixed_numbers():
    from sweeps.replay.simulate import replay_slots
    from sweeps.spec import load_spec

    assert replay_slots(load_spec("mnist-paper")) == 16 and replay_slots(load_spec("gsc-paper")) == 8


# -- devices and the head's Python -----------------------------------------------------------------

def test_a_gpu_torch_cannot_use_fails_in_one_line_and_the_cpu_is_said():
    import torch

    from sweeps.run.device import NodeError, trial_device

    assert trial_device(0, "n1").tags() == {"sweeps.device": "cpu", "sweeps.device_name": "cpu"}
    if torch.cuda.is_available():  # a GPU machine: the device is named with its versions
        info = trial_device(0.5, "n1")
        assert info.device == "cuda" and info.tags()["sweeps.cuda_version"] == torch.version.cuda
        return
    with pytest.raises(NodeError) as e:
        trial_device(0.5, "gpu-node-3 (10.0.0.3)")
    line = str(e.value)
    assert "\n" not in line and "gpu-node-3 (10.0.0.3)" in line and "resources.gpus: 0" in line
    assert f"torch {torch.__version__}" in line


def test_the_head_check_names_the_missing_packages_and_the_fix():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ready = subprocess.run([sys.executable, "-m", "sweeps.run.headcheck"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert ready.returncode == 0 and "has every package a sweep needs" in ready.stdout
    # -S: no site-packages, as a head's bare system Python
    bare = subprocess.run([sys.executable, "-S", "-m", "sweeps.run.headcheck"], env=env, capture_output=True,
                          text=True, timeout=60)
    lines = bare.stdout.strip().splitlines()
    assert bare.returncode == 2 and len(lines) == 1, bare.stdout + bare.stderr
    assert lines[0].startswith("error: the head's Python") and "torch" in lines[0] and "rich" in lines[0]
    assert "requirements.lock" in lines[0] and "ray start" in lines[0]


def test_the_head_check_knows_every_dependency():
    import re
    import tomllib

    from sweeps.run.headcheck import REQUIRED

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in deps}
    assert names == set(REQUIRED)


# -- with real Ray heads ---------------------------------------------------------------------------

def _kill_under(base: Path) -> None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):  # processes started under this temp dir
        try:
            if str(base).encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture
def ray_tmp():
    """A Ray temp folder of this test's own (short: Ray's socket paths live below), as $RAY_TMPDIR."""
    base = Path(tempfile.mkdtemp(prefix="srt-", dir="/tmp"))
    try:
        yield base
    finally:
        _kill_under(base)
        shutil.rmtree(base, ignore_errors=True)


def _start_head(num_cpus: int, base: Path, env: dict[str, str]) -> RayNode:
    node = RayNode(num_cpus, base / "ray", base / "head.log", env=env).start()
    deadline = time.monotonic() + 180
    while not _listening(node.address):
        assert node.proc.poll() is None and time.monotonic() < deadline, (base / "head.log").read_text()[-3000:]
        time.sleep(1)
    return node


@pytest.mark.slow
def test_a_local_sweep_starts_its_own_ray_beside_a_stale_file_and_a_running_head(tmp_path, data_dir, ray_tmp):
    env = {"RAY_TMPDIR": str(ray_tmp)}  # where Ray looks for ray_current_cluster: $RAY_TMPDIR/ray/
    address_file = ray_tmp / "ray" / "ray_current_cluster"
    address_file.parent.mkdir()
    address_file.write_text("127.0.0.1:9")  # left by a `ray start` that did not stop cleanly: nobody there
    path = write_spec(tmp_path, tiny_spec("beside-stale", budget={"trials": 0, "max_concurrent": 1,
                                                                  "max_failures": 0}))
    proc = run_cli(["run", str(path), "--root", str(tmp_path / "store")], cwd=tmp_path, timeout=400, **env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    head = _start_head(1, ray_tmp, base_env(**env))
    try:
        deadline = time.monotonic() + 180  # `ray start` names itself there once its node is up
        while not address_file.read_text().strip().endswith(f":{head.gcs_port}"):  # (the host's address)
            assert head.proc.poll() is None and time.monotonic() < deadline, address_file.read_text()
            time.sleep(1)
        path = write_spec(tmp_path, tiny_spec("beside-head", budget={"trials": 0, "max_concurrent": 1,
                                                                     "max_failures": 0}))
        proc = run_cli(["run", str(path), "--root", str(tmp_path / "store")], cwd=tmp_path, timeout=400, **env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        head_ids = {n["node_id"] for n in alive_nodes(head.address, base_env(**env))}
        assert head_ids  # the head is up, and the sweep's trial ran elsewhere: on its own Ray
        runs = trial_runs(tmp_path / "store", "beside-head")
        assert runs and not {r.data.tags["sweeps.node_id"] for r in runs} & head_ids
    finally:
        head.stop()


@pytest.mark.slow
def test_a_cluster_that_can_grow_refuses_default_stores_at_once(tmp_path, ray_tmp, monkeypatch):
    """A head with 0 CPUs (its trials run on workers to come): the default SQLite stores are refused
    in one line, within 1.5 s of connecting, and nothing is written."""
    import ray

    from sweeps.errors import SpecError
    from sweeps.run import ray_private
    from sweeps.run.ray_start import _check_cluster
    from sweeps.spec import SweepSpec

    env = base_env(RAY_TMPDIR=str(ray_tmp))
    head = _start_head(0, ray_tmp, env)
    try:
        path = write_spec(tmp_path, tiny_spec("grows"))
        proc = run_cli(["run", str(path), "--root", str(tmp_path / "store"), "--address", head.address],
                       cwd=tmp_path, timeout=300, **QUIET_ENV, RAY_TMPDIR=str(ray_tmp))
        errors = [x for x in proc.stdout.splitlines() if x.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "head with 0 CPUs" in errors[0] and "postgresql://" in errors[0]
        assert not (tmp_path / "store").exists()  # nothing written

        spec = SweepSpec.from_dict(dict(tiny_spec("grows"), stores={"root": str(tmp_path / "store")}))
        for key, value in QUIET_ENV.items():  # as the head: no token auth
            monkeypatch.setenv(key, value)
        ray.init(address=head.address, log_to_driver=False, logging_level="ERROR")
        try:
            assert not ray_private.has_autoscaler() and ray_private.autoscaling_resources() is None
            t0 = time.monotonic()
            with pytest.raises(SpecError, match="a SQLite store is reachable from this machine only"):
                _check_cluster(head.address, spec)
            assert time.monotonic() - t0 < 1.5
        finally:
            ray.shutdown()
    finally:
        head.stop()


def test_the_guard_reads_growth_from_nodes_autoscaler_and_head(monkeypatch):
    from sweeps.run import ray_private
    from sweeps.run.ray_start import growth

    one = [{"Resources": {"CPU": 4.0}}]
    monkeypatch.setattr(ray_private, "has_autoscaler", lambda: False)
    assert growth("h:1", one) is None
    assert "has 2 nodes" in growth("h:1", one * 2)
    assert "head with 0 CPUs" in growth("h:1", [{"Resources": {"GPU": 0.0}}])
    monkeypatch.setattr(ray_private, "has_autoscaler", lambda: True)
    assert "has an autoscaler" in growth("h:1", one)
