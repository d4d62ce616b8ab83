"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


_SCRATCH: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """The suite leaves nothing in the temp folder: what its processes put there (Ray's session
    folders, a killed trial's scratch folder, MLflow's temporary files, pytest's own tmp_path
    folders) goes to one folder, set as TMPDIR and RAY_TMPDIR for this process and every command it
    starts, and deleted at the end of a passing run (kept, and named, when a test failed). Short, so
    Ray's socket paths stay under the 107-character limit."""
    if getattr(config, "workerinput", None) is not None:
        return  # a pytest-xdist worker: the controller set it up
    root = tempfile.mkdtemp(prefix="sst-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chmod(root, 0o1777)  # as /tmp: the test PostgreSQL runs as another user and reads its files here
    _SCRATCH.update(root=root, saved={k: os.environ.get(k) for k in ("TMPDIR", "RAY_TMPDIR")})
    os.environ["TMPDIR"] = os.environ["RAY_TMPDIR"] = root
    tempfile.tempdir = root
    if config.option.basetemp is None:
        config.option.basetemp = os.path.join(root, "pytest")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SCRATCH["keep"] = exitstatus not in (0, 5)


def pytest_unconfigure(config: pytest.Config) -> None:
    root = _SCRATCH.pop("root", None)
    if root is None:
        return
    tempfile.tempdir = None
    for key, value in _SCRATCH.pop("saved").items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _SCRATCH.pop("keep", False):
        print(f"\ntests failed: their temp folder is kept for a look: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data root from $SPARSE_SWEEPS_DATA; fails (not skips) when it is unset or missing."""
    value = os.environ.get("SPARSE_SWEEPS_DATA")
    if not value:
        pytest.fail("set SPARSE_SWEEPS_DATA to the data root (the folder holding MNIST/ and SpeechCommands/)")
    path = Path(value).expanduser()
    if not path.is_dir():
        pytest.fail(f"SPARSE_SWEEPS_DATA={value!r} is not a folder; point it at the data root")
    return path


@pytest.fixture(scope="session")
def finished_sweep(tmp_path_factory, data_dir):
    """A real 2-trial sweep (the dense baseline and one searched config) on an MNIST subset,
    run once through the CLI and shared by the e2e, dashboard and deployment tests."""
    from sweep_helpers import run_cli, tiny_spec, write_spec

    folder = tmp_path_factory.mktemp("sweep")
    spec = write_spec(folder, tiny_spec("e2e"))
    proc = run_cli(["run", str(spec), "--root", str(folder / "store")], cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder, folder / "store", proc.stdout


@pytest.fixture(scope="session")
def test_postgres():
    """A throwaway PostgreSQL on 127.0.0.1 with password auth (the `pgserver` wheel's binaries, or a
    system install), shared by the store tests. Fails, never installs, when there is none."""
    from cluster_helpers import Postgres, ensure_postgres

    try:
        pg_bin = ensure_postgres()
    except RuntimeError as e:
        pytest.fail(str(e))
    pg = Postgres(pg_bin).start()
    try:
        yield pg
    finally:
        pg.stop()
