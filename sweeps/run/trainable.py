"""The Ray trainable: a thin adapter from Ray's config dict to `sparsity.run_experiment`.

Per epoch it reports every metric with a checkpoint (the validation noise score only where it is
read: at the epochs an early-stopping rule decides on, and in the final report, after the noise
curves; NaN elsewhere, `TrialReport`), and logs the same metrics to
the trial's nested MLflow run in one batch. A NaN loss ends the trial as failed with that reason
(retrying cannot help); any other exception marks the run FAILED and propagates to Ray, which
retries the trial from its last checkpoint up to ``budget.max_failures`` times. Before any of it,
the trial checks its node (`_node_ready`): a node without the dataset, or whose torch cannot use the
GPU Ray granted, ends the trial with one line naming the node and the fix, and the whole sweep with
it (`sweeps.run.tune.NodeErrorStop`): every trial placed there would fail the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
import optuna
from optuna.trial import TrialState
import ray
from ray import tune

from sparsity.data import DataConfig, Dataset, load_dataset
from sparsity.experiment import ExperimentResult, run_experiment
from sparsity.train import NonFiniteLossError

from sweeps.search import record as rec
from sweeps.search import study as sweep_study
from sweeps.tracking import runs as tracking
from sweeps.search.optuna_private import stored_trial
from sweeps.search.trial_report import TrialReport
from sweeps.run.tune import NODE_ERROR  # a node that cannot run the trial: the sweep stops on it
from sweeps.errors import UserError
from sweeps.spec import SweepSpec

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "train.pt"
WORKDIR_PREFIX = "sweeps-trial-"


def _workdir_prefix(number: int) -> str:
    return f"{WORKDIR_PREFIX}{number}-pid{os.getpid()}-"


def remove_stale_workdirs(folder: str | None = None) -> list[str]:
    """Remove the work folders that trials killed mid-run left in the temp folder (a killed process
    never runs its clean-up): those whose process (the pid in the name) is gone. Returns them."""
    removed = []
    for d in Path(folder or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-pid*-*"):
        try:
            pid = int(d.name.split("-pid", 1)[1].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:  # that trial's process is gone
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
        except (ValueError, OSError):  # not ours to judge (a name we did not make, another user's process)
            continue
    return removed
# Fault injection for resilience tests: "N" makes Optuna trial N raise on every attempt.
FAULT_ENV = "SPARSE_SWEEPS_FAIL_TRIAL"
NAN = float("nan")


@functools.lru_cache(maxsize=2)
def _dataset(config: DataConfig) -> Dataset:
    # Reused actors keep this: a worker loads its dataset once for all the trials it runs.
    return load_dataset(config)


def trial_experiment(spec: SweepSpec, config: dict[str, Any]):
    """(ExperimentConfig, searched params, baseline name) for one Ray trial config (`SweepSpec.trial`)."""
    return spec.trial(config)


@functools.lru_cache(maxsize=2)
def _study_storage(url: str) -> optuna.storages.BaseStorage:
    # One per worker process: a reused actor's later trials skip the connection and schema check.
    return sweep_study.storage(url)


def _recorded(optuna_url: str, sweep: str, number: int) -> TrialReport | None:
    """The final report of a trial Optuna already holds as COMPLETE (a restored driver reruns trials
    its last snapshot showed running): it is reported again, not retrained."""
    study = sweep_study.load_study(sweep, _study_storage(optuna_url))
    trial = stored_trial(study, number) if study else None  # this trial alone: every trial starts here
    if trial is None or trial.state != TrialState.COMPLETE:
        return None
    return TrialReport(number=number, epoch=0, val_accuracy=trial.values[0], val_noise_score=trial.values[1],
                       final=True, baseline=trial.user_attrs.get(rec.BASELINE, ""),
                       test_accuracy=trial.user_attrs.get(rec.TEST_ACCURACY),
                       test_noise_score=trial.user_attrs.get(rec.TEST_NOISE_SCORE))


def run_trial(
    config: dict[str, Any], *, spec: SweepSpec, tracking_uri: str, experiment_id: str, parent_run_id: str,
    optuna_url: str, worker_env: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
) -> None:
    from sweeps.stores.secrets import remember_secrets
    from sweeps.tracking.auth import use_store_credentials

    started = time.perf_counter()
    os.environ.update(worker_env or {})  # the driver's SPARSE_SWEEPS_* settings (data root, cache, ...): no secret
    remember_secrets(secrets or {})  # the store passwords: this process's memory, never its environment
    use_store_credentials(tracking_uri)  # an http MLflow server's: a header on MLflow's requests
    number = int(config["optuna_trial_number"])
    exp, params, baseline = trial_experiment(spec, config)
    recorded = _recorded(optuna_url, spec.name, number)
    if recorded is not None:
        tune.report(dataclasses.replace(recorded, epoch=exp.recipe.epochs).to_result())
        return
    try:  # this node can run it: its data is here, its GPUs are usable (else the sweep ends, one line)
        device = _node_ready(spec, exp)
    except UserError as e:
        log.error("%s", e)
        tune.report({**TrialReport(number=number, epoch=0, val_accuracy=None, final=True, error=str(e),
                                   baseline=baseline or "").to_result(), NODE_ERROR: str(e)})
        return
    client = MlflowClient(tracking_uri)
    run_id = _open_run(client, spec, config, exp, params, baseline, experiment_id, parent_run_id, number)
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in device.tags().items()])  # this attempt's device

    # Reported checkpoints are copied to Ray's storage before tune.report returns: the local
    # folder goes when the trial ends (reused actors would otherwise fill /tmp).
    remove_stale_workdirs()
    with tempfile.TemporaryDirectory(prefix=_workdir_prefix(number)) as tmp:
        workdir = Path(tmp)
        ckpt_file = workdir / CHECKPOINT_FILE
        restored = tune.get_checkpoint()  # a retried attempt (Tune's max_failures) resumes its last epoch
        if restored is not None:
            with restored.as_directory() as d:
                shutil.copy(Path(d) / CHECKPOINT_FILE, ckpt_file)
        on_epoch = _EpochReporter(spec, exp, client, run_id, number, baseline, workdir)
        try:
            if os.environ.get(FAULT_ENV) == str(number):
                raise RuntimeError(f"injected fault in trial {number} (${FAULT_ENV})")
            dataset = _dataset(exp.data)
            on_epoch.timing["setup_seconds"] = time.perf_counter() - started
            result = run_experiment(
                exp, dataset=dataset, on_epoch=on_epoch, checkpoint_path=ckpt_file,
                device=device.device, threads=max(1, int(spec.resources.cpus)),
            )
        except NonFiniteLossError as e:  # retrying cannot mend it: the trial ends failed, with the reason
            client.set_tag(run_id, "sweeps.error", str(e))
            client.set_terminated(run_id, "FAILED")
            tune.report(TrialReport(number=number, epoch=on_epoch.last_epoch, val_accuracy=None, final=True,
                                    error=str(e), baseline=baseline or "").to_result())
            return
        except Exception as e:  # Ray retries it (budget.max_failures) from its last checkpoint
            client.set_tag(run_id, "sweeps.error", "".join(traceback.format_exception_only(e)).strip()[:5000])
            client.set_terminated(run_id, "FAILED")
            raise
        logging_started = time.perf_counter()
        finals = log_result(client, run_id, result, tracking_uri)
        on_epoch.timing["logging_seconds"] = time.perf_counter() - logging_started
        tracking.log_metrics(client, run_id, on_epoch.timing, step=on_epoch.last_epoch)
        client.set_terminated(run_id, "FINISHED")
        report = _final_report(number, on_epoch.last_epoch, baseline, finals, result)
        tune.report(report.to_result(), checkpoint=tune.Checkpoint.from_directory(workdir))


def _node_ready(spec: SweepSpec, exp: Any):
    """This node's device for the trial, once its data is checked (a look for the files, in
    milliseconds). Raises a `UserError` naming this node and the fix when it lacks either."""
    from sweeps.data.check import check_on_node, node_name
    from sweeps.run.device import trial_device

    address = ray.util.get_node_ip_address() if ray.is_initialized() else None
    check_on_node(exp.data.name, exp.data.root, address=address)
    return trial_device(spec.resources.gpus, node_name(address))


def _open_run(client: MlflowClient, spec: SweepSpec, config: dict[str, Any], exp: Any, params: dict[str, Any],
              baseline: str | None, experiment_id: str, parent_run_id: str, number: int) -> str:
    """The trial's nested MLflow run (the same one again for a retried attempt), its parameters
    logged once, tagged with the node this attempt runs on."""
    ray_trial_id = tune.get_context().get_trial_id() or "local"
    replicate = (int(config[rec.REPLICATE_OF]), int(config["seed"])) if rec.REPLICATE_OF in config else None
    run_id, resumed = tracking.trial_run(client, experiment_id, spec.name, parent_run_id, number, ray_trial_id,
                                         baseline, replicate)
    client.set_tag(run_id, "sweeps.node_id", ray.get_runtime_context().get_node_id())  # this attempt's node
    if not resumed:
        tracking.log_params(
            client, run_id,
            {**tracking.flatten("", exp.to_dict()), **{f"search.{k}": v for k, v in params.items()},
             "params_total": exp.network.num_params, "params_nonzero": exp.network.num_nonzero_params},
        )
    return run_id


class _EpochReporter:
    """``on_epoch`` of `run_experiment`: logs each epoch's metrics to the trial's MLflow run and
    reports it to Tune with a checkpoint (all but the last epoch, which `run_trial` reports with
    its noise score); at the epochs where an early-stopping rule decides on both objectives, it
    scores the validation noise first. Keeps the last epoch and where the trial's time went."""

    def __init__(self, spec: SweepSpec, exp: Any, client: MlflowClient, run_id: str, number: int,
                 baseline: str | None, workdir: Path) -> None:
        self.exp, self.client, self.run_id, self.number, self.workdir = exp, client, run_id, number, workdir
        self.baseline = baseline or ""
        self.rule = spec.stopping_rule()  # what the early-stopping rule reads at each epoch
        self.last_epoch = 0
        # Where a trial's wall time goes besides training, logged with its final metrics.
        self.timing = {"setup_seconds": 0.0, "report_seconds": 0.0, "logging_seconds": 0.0}

    def __call__(self, r: Any, model: Any) -> None:
        t = time.perf_counter()
        self.last_epoch = r.epoch
        epochs = self.exp.recipe.epochs
        metrics = {k: v for k, v in r.to_dict().items() if v is not None}
        noise_score = None
        if r.epoch < epochs and self.rule is not None and self.rule.needs_noise(r.epoch):
            # MO-ASHA compares both objectives at its rungs: score the validation split now.
            noise_score = float(_validation_noise_score(self.exp, _dataset(self.exp.data), model))
            metrics["val_noise_score"] = noise_score
        tracking.log_metrics(self.client, self.run_id, metrics, step=r.epoch)
        if r.epoch < epochs:  # the last epoch is reported with the noise score, by run_trial
            report = TrialReport(number=self.number, epoch=r.epoch, val_accuracy=r.val_accuracy,
                                 val_noise_score=noise_score, baseline=self.baseline, metrics=metrics)
            tune.report(report.to_result(), checkpoint=tune.Checkpoint.from_directory(self.workdir))
        self.timing["report_seconds"] += time.perf_counter() - t


def _final_report(number: int, epoch: int, baseline: str | None, finals: dict[str, float],
                  result: ExperimentResult) -> TrialReport:
    """The trial's last report: both objectives, the test figures and both noise curves."""
    return TrialReport(
        number=number, epoch=epoch, val_accuracy=finals["val_accuracy"],
        val_noise_score=finals["val_noise_score"], final=True, baseline=baseline or "",
        test_accuracy=result.test_accuracy,
        test_noise_score=None if result.test_curve is None else float(result.test_curve.noise_score),
        noise_max=result.validation_curve.total * len(result.validation_curve.levels),
        val_curve=_curve_dict(result.validation_curve),
        test_curve=None if result.test_curve is None else _curve_dict(result.test_curve),
        metrics={k: v for k, v in finals.items() if k not in TrialReport.__dataclass_fields__},
    )


def _validation_noise_score(exp, data: Dataset, model) -> int:
    """The validation noise score of ``model`` mid-training, scored as the final one is."""
    from sparsity.noise import noise_curve

    return noise_curve(model, data.validation, data.featurize, kind=exp.noise.kind_for(exp.data.name),
                       levels=exp.noise.levels, seed=exp.noise.seed, batch_size=exp.recipe.eval_batch_size).noise_score


def _curve_dict(curve) -> dict[str, Any]:
    # Only what plots need, JSON-clean (no inf levels): Optuna keeps it as a user attr.
    return {"kind": curve.kind, "levels": [float(v) for v in curve.levels], "accuracies": list(curve.accuracies)}


def log_result(client: MlflowClient, run_id: str, result: ExperimentResult, tracking_uri: str) -> dict[str, float]:
    """Final metrics, the noise curves (stepped metrics and a table), the summary and the model."""
    last = result.history[-1].to_dict()
    finals = {
        **{k: v for k, v in last.items() if v is not None},
        "val_noise_score": float(result.validation_curve.noise_score),
        "test_accuracy": NAN if result.test_accuracy is None else float(result.test_accuracy),
        "test_noise_score": NAN if result.test_curve is None else float(result.test_curve.noise_score),
        "trial_seconds": result.seconds,
    }
    tracking.log_metrics(client, run_id, finals, step=last["epoch"])
    curves = [("val", result.validation_curve)] + ([("test", result.test_curve)] if result.test_curve else [])
    # One stepped metric per split; steps are integers: the level in hundredths (0, 5, ..., 50).
    tracking.log_series(client, run_id, noise_series(curves))
    table = {"level": list(result.validation_curve.levels), "val_accuracy": list(result.validation_curve.accuracies)}
    if result.test_curve is not None:
        table["test_accuracy"] = list(result.test_curve.accuracies)
    client.log_table(run_id, data=table, artifact_file="noise_curve.json")
    client.log_dict(run_id, result.summary(), "summary.json")
    # No figure per trial: MLflow's chart view draws the stepped metrics above, and the sweep's
    # report draws every curve (an interactive figure per trial would carry plotly.js, 4.8 MB, each).
    log_model(client, run_id, result, tracking_uri)
    return finals


def noise_steps(levels) -> list[int]:
    """MLflow steps (integers) for a curve's levels: the level in hundredths (0, 5, ..., 50) when
    every level is a fraction in [0, 1], else the level's position (an SNR curve has inf and dB)."""
    levels = [float(v) for v in levels]
    if all(0.0 <= v <= 1.0 for v in levels):
        return [int(round(v * 100)) for v in levels]
    return list(range(len(levels)))


def noise_series(curves) -> list[tuple[str, float, int]]:
    """(metric, accuracy, step) points of ``(split, NoiseCurve)`` pairs: one stepped metric per split."""
    return [
        (f"{split}_noise_accuracy", acc, step)
        for split, curve in curves for acc, step in zip(curve.accuracies, noise_steps(curve.levels))
    ]


def log_model(client: MlflowClient, run_id: str, result: ExperimentResult, tracking_uri: str) -> None:
    """The trained network as a ``sparse_sweeps`` model (`sweeps.tracking.models`): its state_dict and
    NetworkSpec, never a pickle."""
    import mlflow

    from sweeps.tracking import models

    run = client.get_run(run_id)
    if run.outputs is not None and run.outputs.model_outputs:
        # A retried attempt (a lost node, a resumed driver) resumed from the final checkpoint:
        # the same weights are already logged, and a second copy would duplicate the model.
        return
    mlflow.set_tracking_uri(tracking_uri)
    models.log_model(result.model, result.config.network, run_id)
