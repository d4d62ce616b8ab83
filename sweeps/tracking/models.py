"""Trial models in MLflow without pickle: a ``state_dict`` and the `NetworkSpec` that rebuilds it.

MLflow's PyTorch flavour pickles the whole module, and loading it unpickles whatever the artifact
store holds: whoever can write there (the bucket, the MLflow server's account) could run code on
the machine that exports or deploys. A trial's model is logged instead as an MLflow model of
flavour ``sparse_sweeps``:

* ``weights.pt``: the network's ``state_dict``, tensors only, read back with
  ``torch.load(weights_only=True)`` (`sparsity.train.load_tensors`);
* ``network.json``: the `NetworkSpec` (plain JSON) that `sparsity.build_network` rebuilds;
* its signature and input example, as MLflow's own flavours log them (the registry shows both).

A trial's model has no ``python_function`` flavour: `load` is its loader. A registered model (what
`log_model` writes with ``onnx_model``) holds the same network twice: ``weights.safetensors`` with
``network.json`` for `load`, and ``model.onnx`` under MLflow's own ``onnx`` flavour (and its
``python_function`` flavour, which runs the graph in onnxruntime): ``mlflow.onnx.load_model`` and
``mlflow.pyfunc.load_model`` read it without pickle and without this package.

`load` reads the model's ``MLmodel`` file (YAML, safe-loaded) first and refuses any other kind of
model, a pickled ``pytorch`` one included, with one line, before its weights are read; the size of
the network ``network.json`` describes is capped and the weights' names, shapes and dtypes are
checked against it before anything is built (`sparsity.handoff`); and it sets MLflow's own switch
against pickle deserialization (`forbid_pickle`) for the process.
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
SAFE_WEIGHTS = "weights.safetensors"
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
    def save_model(path: str, mlflow_model: Any, model: Any, network: Any, input_example: Any,
                   onnx_model: Any = None, **_: Any) -> None:
        import torch
        from mlflow.models import infer_signature

        from sweeps.tracking.mlflow_private import save_input_example

        folder = Path(path)
        if onnx_model is None:
            folder.mkdir(parents=True)
            weights = WEIGHTS
            torch.save(model.state_dict(), folder / WEIGHTS)
        else:  # MLflow's own onnx flavour (and its onnxruntime python_function) beside ours
            import onnx
            from mlflow import onnx as mlflow_onnx

            mlflow_onnx.save_model(onnx_model, path, mlflow_model=mlflow_model, save_as_external_data=False,
                                   onnx_execution_providers=["CPUExecutionProvider"],
                                   pip_requirements=[f"onnx=={onnx.__version__}", "onnxruntime"])
            from sparsity.handoff import save_weights

            weights = SAFE_WEIGHTS
            save_weights(model, folder / SAFE_WEIGHTS)
        (folder / NETWORK).write_text(json.dumps(network.to_dict()))
        save_input_example(mlflow_model, input_example, path)
        with torch.no_grad():
            output = model(torch.from_numpy(input_example)).numpy()
        mlflow_model.signature = infer_signature(input_example, output)
        mlflow_model.add_flavor(FLAVOR, weights=weights, network=NETWORK, torch_version=str(torch.__version__),
                                loader="sweeps.results.deploy.load_model")
        mlflow_model.save(str(folder / MLMODEL))


def log_model(model: Any, network: Any, run_id: str, name: str = "model", onnx_model: Any = None) -> str:
    """Log ``model`` (a `SparseNet` built from ``network``) to run ``run_id`` (on the current
    tracking URI) as a ``sparse_sweeps`` model; returns its model id. With ``onnx_model`` (an
    ``onnx.ModelProto`` of the same network) the model also has MLflow's ``onnx`` flavour."""
    import mlflow
    import numpy as np
    from mlflow.models import Model

    model = model.to("cpu").eval()
    example = np.zeros((2, *network.input_shape), dtype=np.float32)  # two rows: the batch size is free
    # The run active: the model belongs to its experiment (and its artifact location), not the default one.
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        info = Model.log(artifact_path=None, name=name, flavor=_Flavor, run_id=run_id, model=model,
                         network=network, input_example=example, validate_serving_input=False,
                         onnx_model=onnx_model)
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
    from sparsity.handoff import check_size, load_weights
    from sparsity.train import UnsafeCheckpointError

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
        weights = flavor.get("weights")
        if weights not in (WEIGHTS, SAFE_WEIGHTS) or flavor.get("network") != NETWORK:
            raise UnsafeModelError(f"{ref}: refused: its MLmodel names other files than {WEIGHTS} (or "
                                   f"{SAFE_WEIGHTS}) and {NETWORK}")
        try:
            network = NetworkSpec.from_dict(json.loads((folder / NETWORK).read_text()))
        except (ValueError, TypeError, AttributeError, KeyError) as e:  # bad JSON, or JSON of another shape
            reason = " ".join(str(e).split())[:200]
            raise UnsafeModelError(f"{ref}: {NETWORK} does not describe a network ({reason})") from None
        check_size(network, f"{ref}: {NETWORK}")  # before a byte of weights is read
        try:
            state = load_weights(folder / weights, network, where=f"{ref}: {weights}", map_location=map_location)
        except UnsafeCheckpointError as e:
            reason = str(e).split(": ", 1)[-1].split("; ")[0]  # what it holds, without the temporary path
            raise UnsafeModelError(f"{ref}: {weights}: {reason}; not loaded. Whoever can write to the artifact "
                                   f"store changed it: register the trial's model again") from None
        model = build_network(network)
        try:
            model.load_state_dict(state)  # masks come from the file too: exactly the trained network
        except (RuntimeError, TypeError, AttributeError) as e:
            reason = " ".join(str(e).split())[:300]
            raise UnsafeModelError(f"{ref}: {WEIGHTS} does not fit its {NETWORK} ({reason})") from None
    return model
