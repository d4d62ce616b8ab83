"""Helpers for the sweep tests: tiny specs, running the CLI, reading the stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml
from mlflow.tracking import MlflowClient

from sweeps.tracking import runs as tracking


def tiny_spec(name: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "dataset": {"name": "mnist", "train_limit": 600, "eval_limit": 200},
        "network": "sparse-mlp",
        "recipe": {"epochs": 1, "first_epoch_batch_size": 32},
        "space": {
            "percent_on": {"low": 0.05, "high": 0.4, "log": True},
            "weight_density": {"low": 0.2, "high": 1.0},
        },
        "baselines": [{"name": "dense"}],
        "budget": {"trials": 1, "max_concurrent": 2, "max_failures": 0},
        "searcher": {"algorithm": "tpe", "seed": 0},
    }
    spec.update(overrides)
    return spec


def write_spec(folder: Path, spec: dict[str, Any]) -> Path:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)  # Ray's token authentication stays on (its default)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, env=cli_env(**env),
        capture_output=True, text=True, timeout=timeout,
    )


def study(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'optuna.db'}")


def trial_runs(root: Path, name: str) -> list:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(name)
    return tracking.find_runs(client, exp.experiment_id, {tracking.TAG_SWEEP: name, tracking.TAG_KIND: "trial"})


def mlflow_client(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
