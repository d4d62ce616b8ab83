"""MLflow: one parent run per sweep, one nested run per trial, found again by their tags.

Runs are looked up by tags, never created twice: a trial restarted (retry, resumed driver) reopens
the run tagged with its sweep and Optuna trial number. Metrics go out in one ``log_batch`` call
per report.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Mapping

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sweeps.errors import TrackingUnreachableError

log = logging.getLogger(__name__)

TAG_SWEEP = "sweeps.sweep"
TAG_KIND = "sweeps.kind"  # "sweep" (parent) or "trial"
TAG_OPTUNA = "sweeps.optuna_trial_number"
TAG_RAY = "sweeps.ray_trial_id"
TAG_BASELINE = "sweeps.baseline"
TAG_REPLICATE_OF = "sweeps.replicate_of"  # a seed replicate: the Optuna number of its config's first trial
TAG_MODEL_SEED = "sweeps.model_seed"
TAG_PARENT = "mlflow.parentRunId"


def check_reachable(tracking_uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before MLflow's own retries, when an HTTP tracking server does not answer. Its
    password (if this process holds one) goes with MLflow's requests from here on (`use_store_credentials`)."""
    from sweeps.stores.preflight import mlflow_problem
    from sweeps.tracking.auth import use_store_credentials

    use_store_credentials(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        problem = mlflow_problem(tracking_uri, timeout)
        if problem:
            raise TrackingUnreachableError(f"{problem} (setting: stores.mlflow_tracking_uri)")


# Makes the MLflow UI open the experiment on its runs table, not the GenAI overview.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)


def find_runs(client: MlflowClient, exp_id: str, tags: Mapping[str, str], page_size: int = 1000) -> list:
    """Every run of the experiment with these tags, page after page (MLflow returns at most
    ``page_size`` per call)."""
    flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs: list = []
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=flt, max_results=page_size, page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def parent_run(client: MlflowClient, exp_id: str, sweep: str, create: bool) -> str | None:
    runs = find_runs(client, exp_id, {TAG_SWEEP: sweep, TAG_KIND: "sweep"})
    if runs:
        return runs[0].info.run_id
    if not create:
        return None
    run = client.create_run(exp_id, run_name=sweep, tags={TAG_SWEEP: sweep, TAG_KIND: "sweep"})
    return run.info.run_id


def trial_run(
    client: MlflowClient, exp_id: str, sweep: str, parent_id: str, number: int, ray_trial_id: str,
    baseline: str | None, replicate: tuple[int, int] | None = None,
) -> tuple[str, bool]:
    """(run id, resumed) of the nested run of Optuna trial ``number``; reopened if it exists.
    ``replicate``: (first trial of the config, model seed) for a seed replicate, tagged so."""
    runs = find_runs(client, exp_id, {TAG_SWEEP: sweep, TAG_KIND: "trial", TAG_OPTUNA: str(number)})
    if runs:
        run_id = runs[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, TAG_RAY, ray_trial_id)
        return run_id, True
    name = f"{sweep}-{number:04d}" + (f"-{baseline}" if baseline else "")
    tags = {TAG_SWEEP: sweep, TAG_KIND: "trial", TAG_OPTUNA: str(number), TAG_RAY: ray_trial_id, TAG_PARENT: parent_id}
    if baseline:
        tags[TAG_BASELINE] = baseline
    if replicate is not None:
        name += f"-rep{replicate[0]:04d}-seed{replicate[1]}"
        tags.update({TAG_REPLICATE_OF: str(replicate[0]), TAG_MODEL_SEED: str(replicate[1])})
    run = client.create_run(exp_id, run_name=name, tags=tags)
    return run.info.run_id, False


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    """One REST call for all of a report's metrics; NaN values (not yet computed) are skipped."""
    ts = int(time.time() * 1000)
    batch = [Metric(k, float(v), ts, step) for k, v in metrics.items() if v is not None and math.isfinite(float(v))]
    if batch:
        client.log_batch(run_id, metrics=batch)


def log_series(client: MlflowClient, run_id: str, points: list[tuple[str, float, int]]) -> None:
    """(key, value, step) points in one REST call."""
    ts = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), ts, step) for k, v, step in points])


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> None:
    existing = client.get_run(run_id).data.params
    batch = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
    client.log_batch(run_id, params=batch, tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()])


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """{'network.linear.0.units': 700, ...}: nested config as MLflow params."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], Mapping):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(f"{prefix}.{i}", v))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else value}
