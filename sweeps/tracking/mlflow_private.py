"""The one home of MLflow's private internals this project relies on.

`tests/test_internals.py` fails loudly when MLflow changes one of them.

* `save_input_example`: writes a model's input example and records it in its ``MLmodel``
  (``mlflow.models.utils._save_example``). MLflow's own flavours call it; no public API saves an
  example for a flavour of one's own (`sweeps.tracking.models`), and without it the registry shows
  no input example.
* `register_request_auth`: adds a request-auth provider (MLflow's public plugin interface,
  ``mlflow.tracking.request_auth.abstract_request_auth_provider.RequestAuthProvider``, chosen by
  name through ``$MLFLOW_TRACKING_AUTH``) to MLflow's registry of them
  (``mlflow.tracking.request_auth.registry._request_auth_provider_registry``). MLflow's public way
  is a package entry point, which only an installed distribution's metadata carries; registering in
  the process works wherever the project is imported from (a checkout, a Ray job's working dir).
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_input_example", "register_request_auth"]


def save_input_example(mlflow_model: Any, example: Any, path: str) -> None:
    """Write ``example`` (a numpy array) into the model folder ``path`` and note it in ``mlflow_model``."""
    from mlflow.models.utils import _save_example

    _save_example(mlflow_model, example, path)


def register_request_auth(provider: type) -> None:
    """Make ``provider`` (a ``RequestAuthProvider`` class) one MLflow finds by its name; once."""
    from mlflow.tracking.request_auth import registry

    known = registry._request_auth_provider_registry
    if not any(type(p) is provider for p in known):
        known.register(provider)
