"""One run's context: its stores, resolved once, and what it opened in them, carried through
`run`, `resume`, `confirm`, `reconcile` and the summary (`sweeps.run.service`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeps.errors import StoreError
from sweeps.spec import SweepSpec
from sweeps.stores.config import Stores
from sweeps.stores.secrets import display

if TYPE_CHECKING:
    from sweeps.search.study import SweepStudy

__all__ = ["RunContext", "open_context"]


@dataclass(frozen=True)
class RunContext:
    """``spec`` carries ``stores`` (resolved: absolute root, every URL filled in); ``client`` is the
    MLflow client of the tracking store, ``study`` the sweep's study with the spec's sampler."""

    spec: SweepSpec
    stores: Stores
    client: Any
    experiment_id: str
    parent_run_id: str
    study: "SweepStudy"


def open_context(spec: SweepSpec, create: bool, connections: tuple[Any, Any] | None = None) -> RunContext:
    """Open the sweep in its stores, once: the MLflow experiment and parent run, and the Optuna
    study (``create``: new ones; else existing ones, refused with a `StoreError` when missing).
    The spec's stores must be resolved (`SweepSpec.resolved`, done once by the command) and have
    passed `sweeps.stores.preflight.preflight`. ``connections``: an MLflow client
    and an Optuna storage already open on these stores, used rather than opened again."""
    from mlflow.tracking import MlflowClient

    from sweeps.search.study import SweepStudy
    from sweeps.tracking import runs as tracking

    from sweeps.tracking.auth import use_store_credentials

    stores = spec.stores
    if not stores.is_resolved:
        raise ValueError("open_context takes a spec whose stores are resolved (SweepSpec.resolved(), once per command)")
    use_store_credentials(stores.mlflow_tracking_uri)  # an http server's password: a header, never the environment
    client, optuna_storage = connections or (MlflowClient(stores.mlflow_tracking_uri), stores.optuna_storage)
    exp_id = tracking.experiment_id(client, spec.name, stores.mlflow_artifact_location)
    parent = tracking.parent_run(client, exp_id, spec.name, create=create)
    if parent is None:
        raise StoreError(f"sweep {spec.name!r} has no parent run in MLflow at {display(stores.mlflow_tracking_uri)}; "
                         f"check stores.mlflow_tracking_uri in its saved spec")
    if create:  # after MLflow: a launch stopped in between is launched again, its parent run reused
        study = SweepStudy.create(spec.study_plan(), optuna_storage)
    else:
        study = SweepStudy.load(spec.study_plan(), optuna_storage)
        if study is None:
            raise StoreError(f"sweep {spec.name!r} has no Optuna study in {display(stores.optuna_storage)}; "
                             f"check stores.optuna_storage in its saved spec")
    return RunContext(spec, stores, client, exp_id, parent, study)
