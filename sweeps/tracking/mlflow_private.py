"""The one home of MLflow's private internals this project relies on.

`tests/test_internals.py` fails loudly when MLflow changes one of them.

* `save_input_example`: writes a model's input example and records it in its ``MLmodel``
  (``mlflow.models.utils._save_example``). MLflow's own flavours call it; no public API saves an
  example for a flavour of one's own (`sweeps.tracking.models`), and without it the registry shows
  no input example.
* `shared_view`: the runs page's "share view" state, which the MLflow UI reads from an experiment
  tag ``mlflow.sharedViewState.<key>`` (plain JSON: its search facets and UI state, e.g. the
  columns shown) when the page's URL carries ``?viewStateShareKey=<key>``. `sweeps dashboard`
  opens on such a view: the trials, both objectives and the searched parameters as columns.
* `register_request_auth`: adds a request-auth provider (MLflow's public plugin interface,
  ``mlflow.tracking.request_auth.abstract_request_auth_provider.RequestAuthProvider``, chosen by
  name through ``$MLFLOW_TRACKING_AUTH``) to MLflow's registry of them
  (``mlflow.tracking.request_auth.registry._request_auth_provider_registry``). MLflow's public way
  is a package entry point, which only an installed distribution's metadata carries; registering in
  the process works wherever the project is imported from (a checkout, a Ray job's working dir).
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_input_example", "register_request_auth", "shared_view", "SHARED_VIEW_TAG", "SHARED_VIEW_PARAM"]

SHARED_VIEW_TAG = "mlflow.sharedViewState."  # + key: an experiment tag the runs page reads
SHARED_VIEW_PARAM = "viewStateShareKey"


def save_input_example(mlflow_model: Any, example: Any, path: str) -> None:
    """Write ``example`` (a numpy array) into the model folder ``path`` and note it in ``mlflow_model``."""
    from mlflow.models.utils import _save_example

    _save_example(mlflow_model, example, path)


def _column(kind: str, name: str) -> str:
    """A runs-table column's key as the UI writes it (``metrics.`val_accuracy```)."""
    return f"{kind}.`{name}`"


def shared_view(search_filter: str, order_by_metric: str, metrics: list[str], params: list[str],
                tags: list[str]) -> dict[str, Any]:
    """The JSON of a runs-page view: runs matching ``search_filter`` (MLflow's search syntax),
    sorted by ``order_by_metric`` (highest first), with these metrics, params and tags as columns
    in that order, every run shown (not the first 10), in the table."""
    columns = ([_column("metrics", m) for m in metrics] + [_column("params", p) for p in params]
               + [_column("tags", t) for t in tags])
    return {"searchFilter": search_filter, "orderByKey": _column("metrics", order_by_metric), "orderByAsc": False,
            "selectedColumns": columns, "columnOrder": columns, "runsHiddenMode": "SHOW_ALL", "runListHidden": False,
            "viewMaximized": False}


def register_request_auth(provider: type) -> None:
    """Make ``provider`` (a ``RequestAuthProvider`` class) one MLflow finds by its name; once."""
    from mlflow.tracking.request_auth import registry

    known = registry._request_auth_provider_registry
    if not any(type(p) is provider for p in known):
        known.register(provider)
