"""The one home of MLflow's private internals this project relies on.

`tests/test_internals.py` fails loudly when MLflow changes one of them.

* `save_input_example`: writes a model's input example and records it in its ``MLmodel``
  (``mlflow.models.utils._save_example``). MLflow's own flavours call it; no public API saves an
  example for a flavour of one's own (`sweeps.tracking.models`), and without it the registry shows
  no input example.
"""

from __future__ import annotations

from typing import Any

__all__ = ["save_input_example"]


def save_input_example(mlflow_model: Any, example: Any, path: str) -> None:
    """Write ``example`` (a numpy array) into the model folder ``path`` and note it in ``mlflow_model``."""
    from mlflow.models.utils import _save_example

    _save_example(mlflow_model, example, path)
