"""Stores fail cleanly, before anything is written (issue 13, point 2).

Each store (Optuna RDB, MLflow tracking, Ray storage) is checked reachable and usable before any is
created or written; each failure is one line naming the setting and its variable, the host with the
password masked, the cause and the fix, and `sweeps run` exits 2 having written nothing.
"""

from __future__ import annotations

import time

import pytest

from cluster_helpers import free_port
from sweep_helpers import run_cli, tiny_spec, write_spec
from sweeps.errors import StoreError
from sweeps.stores.config import Stores, normalize_url
from sweeps.stores.preflight import preflight
from sweeps.stores.secrets import display

SECRET = "s3cr3t-Pw-for-tests"


def _problem(**stores) -> str:
    with pytest.raises(StoreError) as info:
        preflight(Stores(**stores))
    return str(info.value)


def test_postgresql_url_names_the_installed_driver():
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3, which is not installed: psycopg2 is.
    assert normalize_url("postgresql://u@db:5432/optuna") == "postgresql+psycopg2://u@db:5432/optuna"
    assert normalize_url("postgres://u@db/optuna") == "postgresql+psycopg2://u@db/optuna"
    assert normalize_url("postgresql+psycopg2://u@db/o") == "postgresql+psycopg2://u@db/o"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert Stores(optuna_storage="postgresql://u@db/o").optuna_storage == "postgresql+psycopg2://u@db/o"


def test_a_store_url_keeps_no_password(tmp_path):
    stores = Stores(root=str(tmp_path), optuna_storage=f"postgresql://alice:{SECRET}@db.example:5432/optuna")
    assert stores.optuna_storage == "postgresql+psycopg2://alice@db.example:5432/optuna"
    assert SECRET not in repr(stores) and SECRET not in repr(stores.resolved())
    assert display(stores.optuna_storage) == "postgresql+psycopg2://alice:***@db.example:5432/optuna"


def test_unreachable_port_is_one_line_with_the_password_masked(tmp_path):
    port = free_port()
    msg = _problem(root=str(tmp_path / "root"), optuna_storage=f"postgresql://alice:{SECRET}@127.0.0.1:{port}/optuna")
    assert msg.count("\n") == 0, msg
    assert msg.startswith("stores.optuna_storage ($SPARSE_SWEEPS_OPTUNA_STORAGE): ")
    assert f"alice:***@127.0.0.1:{port}/optuna" in msg and "connection refused" in msg
    assert "start the database server" in msg and SECRET not in msg
    assert not (tmp_path / "root").exists()


def test_wrong_password_on_the_test_postgres(test_postgres, tmp_path):
    url = test_postgres.url("postgres").replace("sweeps@", f"sweeps:{SECRET}@")  # not its password
    for name in ("optuna_storage", "mlflow_tracking_uri"):
        msg = _problem(root=str(tmp_path / "root"), **{name: url})
        assert msg.startswith(f"stores.{name} ($SPARSE_SWEEPS_{name.upper()}): "), msg
        assert "password authentication failed for user 'sweeps'" in msg and "$PGPASSWORD" in msg
        assert f"sweeps:***@127.0.0.1:{test_postgres.port}" in msg and SECRET not in msg
    assert not (tmp_path / "root").exists()


def test_right_password_passes_and_a_missing_database_is_named(test_postgres, tmp_path):
    good = test_postgres.url("postgres").replace("sweeps@", f"sweeps:{test_postgres.password}@")
    preflight(Stores(root=str(tmp_path / "root"), optuna_storage=good, mlflow_tracking_uri=good))
    msg = _problem(root=str(tmp_path / "root"), optuna_storage=good.replace("/postgres", "/nosuchdb"))
    assert "database 'nosuchdb' does not exist" in msg and "createdb nosuchdb" in msg
    assert test_postgres.password not in msg
    assert not (tmp_path / "root").exists()


def test_mlflow_server_that_does_not_answer(tmp_path):
    msg = _problem(root=str(tmp_path / "root"), mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    assert msg.startswith("stores.mlflow_tracking_uri ($SPARSE_SWEEPS_MLFLOW_TRACKING_URI): ")
    assert "unreachable" in msg and "start it or correct the URI" in msg


def test_ray_storage_that_cannot_be_a_folder(tmp_path):
    (tmp_path / "a-file").write_text("x")
    msg = _problem(root=str(tmp_path / "root"), ray_storage=str(tmp_path / "a-file" / "ray"))
    assert msg.startswith("stores.ray_storage ($SPARSE_SWEEPS_RAY_STORAGE): ")
    assert "is a file, not a folder" in msg


def test_every_failing_store_is_named_at_once(tmp_path):
    (tmp_path / "a-file").write_text("x")
    msg = _problem(root=str(tmp_path / "root"), ray_storage=str(tmp_path / "a-file" / "ray"),
                   optuna_storage=f"postgresql://alice@127.0.0.1:{free_port()}/optuna")
    assert [line.split(" ")[0] for line in msg.splitlines()] == ["stores.optuna_storage", "stores.ray_storage"]


def test_sweeps_run_refuses_an_unreachable_store_with_exit_2_and_writes_nothing(tmp_path):
    spec = write_spec(tmp_path, tiny_spec("unreachable"))
    root = tmp_path / "store"
    t0 = time.monotonic()
    proc = run_cli(["run", str(spec), "--root", str(root)], cwd=tmp_path, timeout=120,
                   SPARSE_SWEEPS_OPTUNA_STORAGE=f"postgresql://alice:{SECRET}@127.0.0.1:{free_port()}/optuna")
    seconds = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out  # one line, no traceback
    assert "stores.optuna_storage ($SPARSE_SWEEPS_OPTUNA_STORAGE)" in lines[0] and "alice:***@" in lines[0]
    assert SECRET not in out
    assert not root.exists()  # no mlflow.db, no folder: nothing written
    assert seconds < 60, f"took {seconds:.0f}s: the check should come before Ray and the data"
