"""The deployment handoff: register the chosen trial's model, export it, load it back.

* `register(...)`: the trial's logged MLflow model is first loaded through the safe loader
  (`sweeps.tracking.models.load`: a pickled or foreign model is refused in one line, nothing is
  registered); the verified network is then logged again with its ONNX graph (MLflow's ``onnx``
  flavour, read by ``mlflow.onnx.load_model`` without pickle or this package) beside its
  safetensors weights and NetworkSpec, and that model becomes a version of a registered model, with
  an alias (default ``champion``) and tags naming the sweep and trial; the config YAML is logged
  beside it.
* `export(...)`: a folder with ``config.yaml``, ``weights.safetensors`` and ``MODEL_CARD.md``
  (each file's sha256 in the card), plus ``model.onnx`` with ``formats=("onnx",)``.
* `load_model(ref)`: a registry URI (``models:/NAME@champion``) or an export folder (its
  ``weights.safetensors``, or an older export's ``weights.pt``), in eval mode, with sparse weights
  checked to be exactly sparse. The network description's size is capped and the weights' names,
  shapes and dtypes checked against it before anything is built (`sparsity.handoff`).

Nothing here unpickles: models are rebuilt from their NetworkSpec and tensors-only weights, and a
model of another kind (a pickled ``pytorch`` one planted in the store) is refused with one line.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sparsity import NetworkSpec, build_network, sparse_weight_modules
from sparsity.errors import UserError
from sparsity.handoff import LEGACY_WEIGHTS, SAFETENSORS
from sparsity.network import SparseNet

from sweeps.tracking import runs as tracking
from sweeps.spec import SpecError, SweepSpec

log = logging.getLogger(__name__)

__all__ = ["trial_model_uri", "register", "export", "load_model", "model_card", "FORMATS", "class_names"]

FORMATS = ("safetensors", "onnx")  # what `export` writes: safetensors always, ONNX when asked
CONFIG, ONNX, CARD = "config.yaml", "model.onnx", "MODEL_CARD.md"


def _trial_run(spec: SweepSpec, number: int):
    from mlflow.tracking import MlflowClient

    stores = spec.stores.resolved()
    tracking.check_reachable(stores.mlflow_tracking_uri)  # one line now, not MLflow's retries
    client = MlflowClient(stores.mlflow_tracking_uri)
    exp = client.get_experiment_by_name(spec.name)
    runs = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_SWEEP: spec.name, tracking.TAG_KIND: "trial",
                                                          tracking.TAG_OPTUNA: str(number)}) if exp else []
    if not runs:
        raise SpecError(f"sweep {spec.name!r}: no MLflow run for trial #{number} in {stores.mlflow_tracking_uri}")
    return client, runs[0]


def trial_model_uri(spec: SweepSpec, number: int) -> str:
    """``models:/<model id>`` of the model a trial logged."""
    _, run = _trial_run(spec, number)
    outputs = getattr(run, "outputs", None)
    models = [o.model_id for o in (outputs.model_outputs if outputs else [])]
    if not models:
        raise SpecError(f"trial #{number} of {spec.name!r} logged no model (did it finish?)")
    return f"models:/{models[-1]}"


def class_names(config_doc: dict[str, Any]) -> tuple[str, ...]:
    """The class names in logit order, from the experiment's data section."""
    from sparsity.facts import dataset_facts

    data = config_doc["data"]
    return dataset_facts(data["name"]).classes(data.get("class_set"))


def _onnx_proto(model: SparseNet, config_doc: dict[str, Any], folder: Path, extra: dict[str, str]) -> Path:
    from sparsity.onnx_export import to_onnx

    return to_onnx(model, folder / ONNX, dataset=config_doc["data"]["name"], classes=class_names(config_doc),
                   metadata=extra)


def register(spec: SweepSpec, number: int, model_name: str, config_doc: dict[str, Any], alias: str = "champion") -> Any:
    """Register trial ``number``'s model as a new version of ``model_name`` and point ``alias`` at it.

    The trial's model is loaded through the safe loader first: anything else (a pickled model planted
    in the store, weights that do not fit the network) is refused in one line and nothing is
    registered. What is registered is the verified network, logged again with its ONNX graph."""
    from sweeps.names import check_alias, check_model_name

    check_model_name(model_name, "model_name")
    check_alias(alias, "alias")
    import mlflow
    import onnx
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import models

    stores = spec.stores.resolved()
    mlflow.set_tracking_uri(stores.mlflow_tracking_uri)
    client = MlflowClient(stores.mlflow_tracking_uri)
    _, run = _trial_run(spec, number)
    source_uri = trial_model_uri(spec, number)
    model = models.load(source_uri, map_location="cpu").eval()  # refuses anything but this project's model
    _check_sparse(model)
    with tempfile.TemporaryDirectory(prefix="sweeps-register-") as tmp:
        path = _onnx_proto(model, config_doc, Path(tmp), {"sweep": spec.name, "optuna_trial_number": str(number)})
        proto = onnx.load_model(str(path))
    model_id = models.log_model(model, model.spec, run.info.run_id, name="registered", onnx_model=proto)
    client.log_dict(run.info.run_id, config_doc, "best_config.yaml")
    source = config_doc["source"]
    version = mlflow.register_model(
        f"models:/{model_id}", model_name,
        tags={"sweep": spec.name, "optuna_trial_number": str(number), "rule": str(source["rule"]),
              "val_accuracy": f"{source['val_accuracy']:.4f}", "val_noise_score": f"{source['val_noise_score']:.0f}",
              "config": "best_config.yaml in run " + run.info.run_id, "trial_model": source_uri,
              "formats": "sparse_sweeps (weights.safetensors + network.json), onnx (model.onnx)"},
    )
    client.set_registered_model_alias(model_name, alias, version.version)
    client.update_model_version(model_name, version.version, description=yaml.safe_dump(config_doc, sort_keys=False))
    return version


def confirmation_lines(src: dict[str, Any]) -> list[str]:
    """The model card's section on seeds: each objective's mean, 95 % interval and n, and what the
    claims against the baselines (`sweeps.results.best.sweep_claims`)."""
    est = src.get("estimates")
    if not est:
        return []
    lines = ["", f"## Over model seeds ({src.get('seeds', 1)} seed(s) behind these figures)", "",
             "| figure | mean | 95% interval | n |", "|---|---|---|---|"]
    for key, e in est.items():
        scale, fmt = (100.0, ".2f") if key.endswith("accuracy") else (1.0, ",.0f")
        interval = "—" if e["low"] is None else f"{format(scale * e['low'], fmt)} – {format(scale * e['high'], fmt)}"
        lines.append(f"| {key} | {format(scale * e['mean'], fmt)} | {interval} | {e['n']} |")
    lines += ["", *[f"- {line}" for line in src.get("claims", [])]]
    return lines


def model_card(doc: dict[str, Any], network: NetworkSpec, dense: dict[str, Any] | None) -> str:
    src = doc["source"]
    lines = [
        f"# {network.name} from sweep {src['sweep']} (trial #{src['optuna_trial_number']})",
        "",
        f"- Dataset: {doc['data']['name']}" + (f" ({doc['data']['class_set']} classes)" if doc['data']['name'] == 'gsc' else ""),
        f"- Chosen by: {src['rule']} on the Pareto front of validation accuracy vs validation noise score",
        f"- Parameters: {network.num_params:,} ({network.num_nonzero_params:,} can be nonzero)",
        "",
        "## Test set",
        "",
        "| model | clean accuracy % | noise score |",
        "|---|---|---|",
        f"| this model | {_pct(src.get('test_accuracy'))} | {_num(src.get('test_noise_score'))} |",
    ]
    if dense is not None:
        lines.append(f"| dense baseline ({dense['name']}) | {_pct(dense.get('test_accuracy'))} | {_num(dense.get('test_noise_score'))} |")
    if dense is not None and dense.get("seeds", 1) > 1:
        lines.append(f"\nThe dense baseline's figures are means over its {dense['seeds']} seeds.")
    lines += confirmation_lines(src)
    curve = src.get("test_curve")
    if curve:
        lines += ["", f"Noise curve ({curve['kind']}), test accuracy % per level:", "",
                  "| level | " + " | ".join(f"{lv:g}" for lv in curve["levels"]) + " |",
                  "|---|" + "---|" * len(curve["levels"]),
                  "| accuracy | " + " | ".join(f"{100 * a:.2f}" for a in curve["accuracies"]) + " |"]
    lines += ["", "## Layers", "", "| layer | output | activation | k (train / eval) | weight density | nonzero weights |",
              "|---|---|---|---|---|---|"]
    for s in network.layer_summaries():
        k = "" if s.k is None else f"{s.k} / {s.k_inference} of {s.units}"
        lines.append(f"| {s.name} | {'x'.join(map(str, s.out_shape))} | {s.activation} | {k} | {s.weight_density:g} | "
                     f"{s.nonzero_weights:,} of {s.weights:,} |")
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_FILE_DOC = {
    CONFIG: "YAML: the network description (`network`), recipe, data, seed, where it came from",
    SAFETENSORS: "safetensors: every tensor of the network (weights, sparse-weight masks, k-winners buffers)",
    ONNX: "ONNX (opset {opset}): preprocessing + network at inference, dynamic batch axis; class names in its metadata",
}


def files_section(folder: Path, files: list[str], config_doc: dict[str, Any]) -> list[str]:
    """The model card's part on the files: formats, each file's sha256, and how to load each
    without this project."""
    from sparsity.onnx_export import INPUT, OPSET

    data = config_doc["data"]["name"]
    lines = ["", "## Files", "", "| file | format | sha256 |", "|---|---|---|"]
    for name in files:
        lines.append(f"| {name} | {_FILE_DOC[name].format(opset=OPSET)} | {_sha256(folder / name)} |")
    lines += ["", "Check a file: `sha256sum FILE` prints the value above.", "",
              "## Load it without this project", "",
              "The weights (any safetensors library; tensors only, no code runs):", "", "```python",
              "import yaml", "from safetensors.numpy import load_file", "",
              "network = yaml.safe_load(open('config.yaml'))['network']  # the layers, in order",
              "tensors = load_file('weights.safetensors')  # name -> numpy array", "```", "",
              "Tensor names follow the layers: `features.convI.conv.weight` / `.bias` (`.conv.module.weight`, "
              "`.conv.weight_mask` when the layer's weights are sparse), `hidden.linearI.linear...`, `output.weight` / "
              "`.bias`; `...bn.running_mean` / `running_var` with batch norm (eps 1e-5, no affine); `...act.duty_cycle` "
              "and `...act.boost_strength` for k-winners. Blocks: conv -> batch norm -> max pool -> k-winners (or ReLU); "
              "linear -> batch norm -> k-winners (or ReLU); then the output layer. At inference a k-winners layer "
              "scores each unit `x * exp((k_inference / n - duty_cycle) * boost_strength)` (n: the units it chooses among; "
              "conv layers have one duty cycle per channel) and keeps the units (raw values) whose "
              "score is at least the k_inference-th largest of its sample (over C*H*W, or over C at each position "
              "when `local`; exactly k_inference with `break_ties`); the table above gives k_inference."]
    if data == "mnist":
        lines += ["", "Inputs are normalised pixels: `(pixels - 0.1307) / 0.3081`, pixels in [0, 1]."]
    if ONNX in files:
        name = INPUT.get(data, "input") if data != "gsc" else "features"
        lines += ["", "The ONNX graph (onnxruntime, or any ONNX runtime):", "", "```python",
                  "import json", "import numpy as np", "import onnxruntime as ort", "",
                  "session = ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])",
                  "meta = session.get_modelmeta().custom_metadata_map",
                  "classes = json.loads(meta['classes'])  # in logit order",
                  f"logits = session.run(None, {{'{name}': batch.astype(np.float32)}})[0]  # batch: any size",
                  "labels = [classes[i] for i in logits.argmax(1)]", "```", ""]
        if data == "mnist":
            lines.append("The graph takes pixels in [0, 1], shape (batch, 1, 28, 28), and normalises them itself.")
        elif data == "gsc":
            lines.append("The log-mel featuriser is not in the graph: its parameters are in the `featurizer` "
                         "metadata; the graph takes standardised log-mel features, shape (batch, 1, 32, 32).")
    lines += ["", "With this project: `sweeps.results.deploy.load_model(FOLDER)` (checks the weights against the "
              "network description, and its size, before building).", ""]
    return lines


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.2f}"


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):,.0f}"


def export(spec: SweepSpec, number: int, config_doc: dict[str, Any], out: str | Path, dense: dict[str, Any] | None,
           formats: tuple[str, ...] = ("safetensors",)) -> Path:
    """Write config.yaml, weights.safetensors, model.onnx (``"onnx"`` in ``formats``) and
    MODEL_CARD.md for trial ``number`` into ``out``; returns ``out``."""
    import mlflow

    from sparsity.handoff import save_weights
    from sweeps.tracking import models

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SpecError(f"--format {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    mlflow.set_tracking_uri(spec.stores.resolved().mlflow_tracking_uri)
    model = models.load(trial_model_uri(spec, number), map_location="cpu").eval()
    _check_sparse(model)
    network = model.spec  # the network the weights belong to: config.yaml describes exactly it
    if NetworkSpec.from_dict(config_doc["network"]) != network:
        log.warning("trial #%d: its logged model's network differs from the sweep's config for it; "
                    "config.yaml describes the logged model's", number)
        config_doc = {**config_doc, "network": network.to_dict()}
    out = Path(out)
    files = [CONFIG, SAFETENSORS, *([ONNX] if "onnx" in formats else [])]
    with tempfile.TemporaryDirectory(prefix="sweeps-export-") as tmp:  # all made first: a refusal writes nothing
        staged = Path(tmp)
        (staged / CONFIG).write_text(yaml.safe_dump(config_doc, sort_keys=False))
        save_weights(model, staged / SAFETENSORS)
        if ONNX in files:
            _onnx_proto(model, config_doc, staged, {"sweep": spec.name, "optuna_trial_number": str(number)})
        card = model_card(config_doc, network, dense) + "\n".join(files_section(staged, files, config_doc))
        (staged / CARD).write_text(card)
        out.mkdir(parents=True, exist_ok=True)
        for name in [*files, CARD]:
            shutil.copyfile(staged / name, out / name)
    return out


def _check_sparse(model: SparseNet) -> None:
    for m in sparse_weight_modules(model):
        if bool((m.weight[~m.weight_mask] != 0).any()):
            raise ValueError(f"{m}: masked weights are nonzero; the weights do not match the network's masks")


def _load_folder(path: Path, map_location: str) -> SparseNet:
    """An export folder: config.yaml's network (size-capped), then weights.safetensors (or an older
    export's weights.pt) checked against it, then the network built."""
    from sparsity.handoff import check_size, load_weights

    try:
        doc = yaml.safe_load((path / CONFIG).read_text())
        network = NetworkSpec.from_dict(doc["network"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        reason = " ".join(str(e).split())[:300]
        raise UserError(f"{path / CONFIG}: not an export's network description ({type(e).__name__}: {reason}); "
                        f"export the model again") from None
    check_size(network, str(path / CONFIG))
    weights = path / SAFETENSORS if (path / SAFETENSORS).is_file() else path / LEGACY_WEIGHTS
    if not weights.is_file():
        raise UserError(f"{path}: no {SAFETENSORS} (or {LEGACY_WEIGHTS}); export the model again")
    state = load_weights(weights, network, map_location=map_location)
    model = build_network(network, seed=int(doc.get("seed", 0) or 0))
    model.load_state_dict(state)  # masks come from the file too: exactly the trained network
    return model


def load_model(ref: str | Path, map_location: str = "cpu") -> SparseNet:
    """A deployed model, ready for inference: ``models:/NAME@ALIAS`` (or any MLflow model URI;
    set the tracking URI first with ``mlflow.set_tracking_uri``) or an export folder."""
    path = Path(str(ref))
    if path.is_dir():
        model = _load_folder(path, map_location)
    else:
        from sweeps.tracking import models

        model = models.load(str(ref), map_location=map_location)  # never unpickled
    _check_sparse(model)
    return model.eval()
