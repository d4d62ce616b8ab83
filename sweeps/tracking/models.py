"""Trial models in MLflow without pickle: a ``state_dict`` and the `NetworkSpec` that rebuilds it.

MLflow's PyTorch flavour pickles the whole module, and loading it unpickles whatever the artifact
store holds: whoever can write there (the bucket, the MLflow server's account) could run code on
the machine that exports or deploys. A trial's model is logged instead as an MLflow model of
flavour ``sparse_sweeps``:

* ``weights.pt``: the network's ``state_dict``, tensors only, read back with
  ``torch.load(weights_only=True)`` (`sparsity.train.load_tensors`);
* ``network.json``: the `NetworkSpec` (plain JSON) that `sparsity.build_network` rebuilds;
* its signature and input example, as MLflow's own flavours log them (the registry shows both).

It has no ``python_function`` flavour (MLflow's generic loaders unpickle): `load` is its loader.
`load` reads the model's ``MLmodel`` file (YAML, safe-loaded) first and refuses any other kind of
model, a pickled ``pytorch`` one included, with one line, before its weights are read; and it
sets MLflow's own switch against pickle deserialization (`forbid_pickle`) for the process.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from sweeps.errors import UserError

__all__ = ["FLAVOR", "UnsafeModelError", "log_model", "load", "forbid_pickle"]

log = logging.getLogger(__name__)

FLAVOR = "sparse_sweeps"
WEIGHTS = "weights.pt"
NETWORK = "network.json"
MLMODEL = "MLmodel"
PICKLE_SWITCH = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"


class UnsafeModelError(UserError):
    """A model that could only be loaded by unpickling it (or that is not this project's)."""


def forbid_pickle() -> None:
    """MLflow's switch against pickle deserialization, off for this process (and its children):
    any MLflow loader that would unpickle a model refuses instead."""
    os.environ[PICKLE_SWITCH] = "false"


class _Flavor:
    """What `mlflow.models.Model.log` calls to write the model folder (MLflow's flavour protocol)."""

    __name__ = FLAVOR

    @staticmethod
    def save_model(path: str, mlflow_model: Any, model: Any, network: Any, input_example: Any, **_: Any) -> None:
        import torch
        from mlflow.models import infer_signature

        from sweeps.tracking.mlflow_private import save_input_example

        folder = Path(path)
        folder.mkdir(parents=True)
        torch.save(model.state_dict(), folder / WEIGHTS)
        (folder / NETWORK).write_text(json.dumps(network.to_dict()))
        save_input_example(mlflow_model, input_example, path)
        with torch.no_grad():
            output = model(torch.from_numpy(input_example)).numpy()
        mlflow_model.signature = infer_signature(input_example, output)
        mlflow_model.add_flavor(FLAVOR, weights=WEIGHTS, network=NETWORK, torch_version=str(torch.__version__),
                                loader="sweeps.results.deploy.load_model")
        mlflow_model.save(str(folder / MLMODEL))


def log_model(model: Any, network: Any, run_id: str, name: str = "model") -> str:
    """Log ``model`` (a `SparseNet` built from ``network``) to run ``run_id`` (on the current
    tracking URI) as a ``sparse_sweeps`` model; returns its model id."""
    import mlflow
    import numpy as np
    from mlflow.models import Model

    model = model.to("cpu").eval()
    example = np.zeros((2, *network.input_shape), dtype=np.float32)  # two rows: the batch size is free
    # The run active: the model belongs to its experiment (and its artifact location), not the default one.
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        info = Model.log(artifact_path=None, name=name, flavor=_Flavor, run_id=run_id, model=model,
                         network=network, input_example=example, validate_serving_input=False)
    return info.model_id


def _fetch(ref: str, folder: str) -> Path:
    """The model's folder, downloaded (files only: nothing in it is run or unpickled here)."""
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=folder))
    except Exception as e:  # MlflowException, OSError: no such model or alias, an unreachable store
        from sweeps.stores.secrets import scrub

        reason = scrub(" ".join(str(getattr(e, "message", e)).split()))[:300]
        raise UserError(f"{ref}: cannot read it ({reason}); check the model name and alias and the tracking URI "
                        f"(mlflow.set_tracking_uri)") from None


def load(ref: str, map_location: Any = "cpu") -> Any:
    """The network of model ``ref`` (``models:/NAME@ALIAS``, ``models:/<model id>``, ``runs:/...``),
    rebuilt from its ``network.json`` and ``weights.pt``: nothing is unpickled."""
    from mlflow.models import Model

    from sparsity import NetworkSpec, build_network
    from sparsity.train import UnsafeCheckpointError, load_tensors

    forbid_pickle()
    with tempfile.TemporaryDirectory(prefix="sweeps-model-") as tmp:
        folder = _fetch(ref, tmp)
        if not (folder / MLMODEL).is_file():
            raise UnsafeModelError(f"{ref}: refused: no {MLMODEL} file, so not a model this project logged")
        try:
            meta = Model.load(str(folder / MLMODEL))  # safe-loaded YAML: a tag is refused, never built
        except Exception as e:  # a YAML tag, a list, a damaged file: whatever the artifact store holds
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
            raise UnsafeModelError(f"{ref}: refused: its {MLMODEL} file cannot be read ({reason})") from None
        flavor = meta.flavors.get(FLAVOR)
        if flavor is None:
            kinds = ", ".join(sorted(meta.flavors)) or "none"
            raise UnsafeModelError(
                f"{ref}: refused: not a model this project logged (flavours: {kinds}); loading it could unpickle "
                f"code from the artifact store. Register a trial's model with `sweeps best NAME --register MODEL`")
        if flavor.get("weights") != WEIGHTS or flavor.get("network") != NETWORK:
            raise UnsafeModelError(f"{ref}: refused: its MLmodel names other files than {WEIGHTS} and {NETWORK}")
        try:
            network = NetworkSpec.from_dict(json.loads((folder / NETWORK).read_text()))
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # bad JSON, or JSON of another shape
            reason = " ".join(str(e).split())[:200]
            raise UnsafeModelError(f"{ref}: {NETWORK} does not describe a network ({reason})") from None
        try:
            state = load_tensors(folder / WEIGHTS, map_location=map_location)
        except UnsafeCheckpointError as e:
            reason = str(e).split(": ", 1)[-1].split("; ")[0]  # what it holds, without the temporary path
            raise UnsafeModelError(f"{ref}: {WEIGHTS}: {reason}; not loaded. Whoever can write to the artifact "
                                   f"store changed it: register the trial's model again") from None
        model = build_network(network)
        try:
            model.load_state_dict(state)  # masks come from the file too: exactly the trained network
        except (RuntimeError, TypeError, AttributeError) as e:
            reason = " ".join(str(e).split())[:300]
            raise UnsafeModelError(f"{ref}: {WEIGHTS} does not fit its {NETWORK} ({reason})") from None
    return model
