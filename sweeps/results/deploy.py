"""The deployment handoff: register the chosen trial's model, export it, load it back.

* `register(...)`: the trial's logged MLflow model (a state_dict and its NetworkSpec, with signature
  and input example, any batch size: `sweeps.tracking.models`) becomes a version of a registered
  model, with an alias (default ``champion``) and tags naming the sweep and trial; the config YAML
  is logged beside it.
* `export(...)`: a folder with ``config.yaml``, ``weights.pt`` (a state_dict) and ``MODEL_CARD.md``.
* `load_model(ref)`: a registry URI (``models:/NAME@champion``) or an export folder, in eval mode,
  with sparse weights checked to be exactly sparse.

Nothing here unpickles: models are rebuilt from their NetworkSpec and tensors-only weights, and a
model of another kind (a pickled ``pytorch`` one planted in the store) is refused with one line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from sparsity import NetworkSpec, build_network, sparse_weight_modules
from sparsity.network import SparseNet
from sparsity.train import load_tensors

from sweeps.tracking import runs as tracking
from sweeps.spec import SpecError, SweepSpec

log = logging.getLogger(__name__)

__all__ = ["trial_model_uri", "register", "export", "load_model", "model_card"]


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


def register(spec: SweepSpec, number: int, model_name: str, config_doc: dict[str, Any], alias: str = "champion") -> Any:
    """Register trial ``number``'s model as a new version of ``model_name`` and point ``alias`` at it."""
    from sweeps.names import check_alias, check_model_name

    check_model_name(model_name, "model_name")
    check_alias(alias, "alias")
    import mlflow
    from mlflow.tracking import MlflowClient

    stores = spec.stores.resolved()
    mlflow.set_tracking_uri(stores.mlflow_tracking_uri)
    client = MlflowClient(stores.mlflow_tracking_uri)
    _, run = _trial_run(spec, number)
    client.log_dict(run.info.run_id, config_doc, "best_config.yaml")
    source = config_doc["source"]
    version = mlflow.register_model(
        trial_model_uri(spec, number), model_name,
        tags={"sweep": spec.name, "optuna_trial_number": str(number), "rule": str(source["rule"]),
              "val_accuracy": f"{source['val_accuracy']:.4f}", "val_noise_score": f"{source['val_noise_score']:.0f}",
              "config": "best_config.yaml in run " + run.info.run_id},
    )
    client.set_registered_model_alias(model_name, alias, version.version)
    client.update_model_version(model_name, version.version, description=yaml.safe_dump(config_doc, sort_keys=False))
    return version


def confirmation_lines(src: dict[str, Any]) -> list[str]:
    """The model card's section on seeds: each objective's mean, 95 % interval and n, and what the
    tests against the baselines support (`sweeps.results.best.claim_lines`)."""
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
    lines += ["", "Load it: `sweeps.results.deploy.load_model(FOLDER)`, or rebuild with "
              "`sparsity.build_network(NetworkSpec.from_dict(config['network']))` and `load_state_dict(weights.pt)`.", ""]
    return "\n".join(lines)


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.2f}"


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):,.0f}"


def export(spec: SweepSpec, number: int, config_doc: dict[str, Any], out: str | Path, dense: dict[str, Any] | None) -> Path:
    """Write config.yaml, weights.pt and MODEL_CARD.md for trial ``number`` into ``out``."""
    import mlflow

    from sweeps.tracking import models

    mlflow.set_tracking_uri(spec.stores.resolved().mlflow_tracking_uri)
    model = models.load(trial_model_uri(spec, number), map_location="cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config_doc, sort_keys=False))
    torch.save(model.state_dict(), out / "weights.pt")
    network = NetworkSpec.from_dict(config_doc["network"])
    (out / "MODEL_CARD.md").write_text(model_card(config_doc, network, dense))
    return out


def _check_sparse(model: SparseNet) -> None:
    for m in sparse_weight_modules(model):
        if bool((m.weight[~m.weight_mask] != 0).any()):
            raise ValueError(f"{m}: masked weights are nonzero; the weights do not match the network's masks")


def load_model(ref: str | Path, map_location: str = "cpu") -> SparseNet:
    """A deployed model, ready for inference: ``models:/NAME@ALIAS`` (or any MLflow model URI;
    set the tracking URI first with ``mlflow.set_tracking_uri``) or an export folder."""
    path = Path(str(ref))
    if path.is_dir():
        doc = yaml.safe_load((path / "config.yaml").read_text())
        model = build_network(NetworkSpec.from_dict(doc["network"]), seed=int(doc.get("seed", 0)))
        state = load_tensors(path / "weights.pt", map_location=map_location)
        model.load_state_dict(state)  # masks come from the file too: exactly the trained network
    else:
        from sweeps.tracking import models

        model = models.load(str(ref), map_location=map_location)  # never unpickled
    _check_sparse(model)
    return model.eval()
