"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
