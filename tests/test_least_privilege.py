"""Least privilege (issue 19, point 4) and usage reports off by default (point 6): the Ray token file is readable by its owner alone; the
cluster's database roles are not superusers and each reaches its own databases only; the images
run as an unprivileged user and the KubeRay pods say so in a securityContext. (Trials get store
passwords in memory, not in their environment: tests/test_redaction.py.)"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"


def test_a_local_ray_writes_its_token_file_for_its_owner_alone(tmp_path):
    """A local sweep's Ray generates ~/.ray/auth_token (token auth on by default); Ray writes it
    0644. In a fresh process with its own HOME, as `sweeps run` starts it."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", *TELEMETRY)}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    code = ("import ray; from sweeps.run import ray_start; ray_start._start_local(1); "
            "from ray._common.usage import usage_lib; from mlflow.telemetry.utils import is_telemetry_disabled; "
            "print('TOKEN', ray_start.ray_token_file()); "
            "print('REPORTS', usage_lib.usage_stats_enabled(), not is_telemetry_disabled()); ray.shutdown()")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    token = home / ".ray" / "auth_token"
    assert f"TOKEN {token}" in proc.stdout and token.is_file()
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert "REPORTS False False" in proc.stdout  # Ray's usage stats and MLflow's telemetry: off by default


TELEMETRY = ("RAY_USAGE_STATS_ENABLED", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")


def test_usage_reports_are_off_by_default_and_can_be_turned_on():
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY}
    code = "import os, sweeps; print(os.environ['RAY_USAGE_STATS_ENABLED'], os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    run = lambda **extra: subprocess.run([sys.executable, "-c", code], env={**env, **extra, "PYTHONPATH": str(REPO)},  # noqa: E731
                                         capture_output=True, text=True, timeout=60).stdout.split()
    assert run() == ["0", "true"]
    assert run(RAY_USAGE_STATS_ENABLED="1", MLFLOW_DISABLE_TELEMETRY="false") == ["1", "false"]  # your choice wins


def test_the_cluster_database_roles_are_not_superusers_and_stay_in_their_databases(tmp_path):
    """cluster/stores/init-db.sh, run as the postgres image runs it (as the superuser), on a fresh
    PostgreSQL: `sweeps` (whose password every node holds) owns the Optuna database only, `mlflow`
    MLflow's; neither is a superuser nor can create roles or databases."""
    import optuna
    import psycopg2

    from cluster_helpers import LOOPBACK, Postgres, ensure_postgres

    pg = Postgres(ensure_postgres(), user="postgres").start()
    try:
        pw = {"sweeps": "sweeps-" + os.urandom(6).hex(), "mlflow": "mlflow-" + os.urandom(6).hex()}
        env = dict(os.environ, POSTGRES_USER="postgres", PGHOST=LOOPBACK, PGPORT=str(pg.port), PGPASSWORD=pg.password,
                   SWEEPS_DB_PASSWORD=pw["sweeps"], MLFLOW_DB_PASSWORD=pw["mlflow"],
                   PATH=f"{pg.bin_dir}:{os.environ['PATH']}")
        proc = subprocess.run(["sh", str(CLUSTER / "stores" / "init-db.sh")], env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

        def connect(user: str, db: str):
            return psycopg2.connect(host=LOOPBACK, port=pg.port, user=user, password=pw[user], dbname=db,
                                    connect_timeout=10)

        for user, own, other in (("sweeps", ["optuna"], ["mlflow", "mlflow_auth", "postgres"]),
                                 ("mlflow", ["mlflow", "mlflow_auth"], ["optuna", "postgres"])):
            for db in own:
                conn = connect(user, db)
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s", (user,))
                    assert cur.fetchone() == (False, False, False)
                    cur.execute("CREATE TABLE probe (x int)")  # the owner builds its schema
                conn.close()
            for db in other:
                with pytest.raises(psycopg2.OperationalError, match="permission denied"):
                    connect(user, db)
        # Optuna creates its schema and a study with the `sweeps` role alone.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        url = f"postgresql+psycopg2://sweeps:{pw['sweeps']}@{LOOPBACK}:{pg.port}/optuna"
        optuna.create_study(study_name="probe", storage=url, directions=["maximize", "maximize"])
        assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["probe"]
    finally:
        pg.stop()


def test_compose_keeps_the_superuser_and_mlflows_password_off_the_nodes():
    compose = yaml.safe_load((CLUSTER / "stores" / "compose.yaml").read_text())["services"]
    pg = compose["postgres"]["environment"]
    assert pg["POSTGRES_USER"] == "postgres" and "PGPASSWORD" not in pg["POSTGRES_PASSWORD"]
    assert "PGPASSWORD" in pg["SWEEPS_DB_PASSWORD"]  # the nodes' password: the `sweeps` role's
    mlflow = compose["mlflow"]
    assert "MLFLOW_DB_PASSWORD" in mlflow["environment"]["PGPASSWORD"]
    assert any(a.startswith("--backend-store-uri=postgresql+psycopg2://mlflow@") for a in mlflow["command"])
    assert "postgresql+psycopg2://mlflow@" in (CLUSTER / "stores" / "basic_auth.ini").read_text()


@pytest.mark.parametrize("name", ["Dockerfile", "stores/mlflow.Dockerfile"])
def test_images_run_as_an_unprivileged_user(name):
    text = (CLUSTER / name).read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    for line in re.findall(r"pip install[^\n]*(?:\\\n[^\n]*)*", text):
        if "-r requirements.lock" in line or "-e ." in line:
            continue
        for pkg in re.findall(r"\s([A-Za-z][\w.-]*(?:[=<>!~][^\s\\]*)?)", line.replace("\\\n", " ")):
            if pkg.startswith(("install", "--")) or pkg in ("&&", "useradd", "mlflow"):
                continue
            assert "==" in pkg, f"{name}: {pkg} is not pinned"


def _pod_templates(node):
    if isinstance(node, dict):
        if "template" in node and isinstance(node["template"], dict) and "containers" in node["template"].get("spec", {}):
            yield node["template"]["spec"]
        for v in node.values():
            yield from _pod_templates(v)
    elif isinstance(node, list):
        for v in node:
            yield from _pod_templates(v)


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_pods_run_unprivileged(name):
    pods = [p for d in yaml.safe_load_all((CLUSTER / "kuberay" / name).read_text()) if d for p in _pod_templates(d)]
    assert len(pods) == 2, pods  # head and GPU workers
    for pod in pods:
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 1000 and ctx["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
