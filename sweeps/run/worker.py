"""What a trial worker imports before its first trial.

A local Ray started by `sweeps` imports this module in every worker process as the process starts
(Ray's ``preload_python_modules``). Ray starts one idle worker per CPU when it starts and Tune's
trial actors take those workers, so these imports (about 8 s of CPU: torch, MLflow, Ray Tune, and
the store drivers a trial's first MLflow and Optuna calls load) run while the driver sets up the
sweep instead of delaying the first trials.
"""

from __future__ import annotations

import alembic.command  # noqa: F401  Optuna's RDB storage checks its schema with alembic
import alembic.migration  # noqa: F401
import alembic.script  # noqa: F401
import mlflow.models  # noqa: F401  the trained model is logged with it (sweeps.tracking.models)
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  the embedded (SQLite) tracking store
import optuna.storages  # noqa: F401

import dashboards.render  # noqa: F401  the trial's noise-curve figure
import sweeps.run.trainable  # noqa: F401  torch, sparsity, MLflow's client, Ray Tune
