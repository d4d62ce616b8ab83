"""Launch, resume and reconcile sweeps: the three stores, one owner each.

* Ray's storage path holds the experiment state and trial checkpoints (resume continues it);
* the Optuna study holds proposals and objective values (the Pareto front);
* MLflow holds what people browse: a parent run per sweep, a nested run per trial.

Each trial's MLflow run is tagged with its Optuna trial number and Ray trial id, and each Optuna
trial with its Ray trial id, so `reconcile` can bring the three into agreement after a crash.
A local copy of the spec (ROOT/specs/NAME.yaml) lets `resume`, `status` and `best` find the stores.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.errors import SweepExistsError
from sweeps.run.device import NodeError
from sweeps.search import record as rec
from sweeps.search.study import quiet_optuna
from sweeps.spec import OBJECTIVES, SweepSpec
from sweeps.spec_store import save_spec, saved_spec, spec_path
from sweeps.stores.preflight import preflight
from sweeps.stores.secrets import redact

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweeps.run.context import RunContext

__all__ = ["SweepOutcome", "run_sweep", "resume_sweep", "confirm_sweep", "reconcile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished (or resumed, or confirmed) sweep hands back: what the CLI prints."""

    name: str
    trials: list["FrozenTrial"]
    front: list["FrozenTrial"]
    seconds: float
    mlflow_experiment_id: str
    parent_run_id: str
    tracking_uri: str


# -- launching ------------------------------------------------------------------------------------
# Each command checks everything a user can fix before anything heavy loads or any store is
# written (the spec, the stores with `preflight`, the data), starts Ray once, opens the sweep in its
# stores once (`RunContext`), and hands that context to `_fit`, `reconcile` and the summary.

def run_sweep(spec: SweepSpec, address: str | None = None, progress: Any = None) -> SweepOutcome:
    """Launch a new sweep: refuses a name whose spec, study or Ray experiment already exists.
    ``progress`` (`sweeps.cli.progress.StudyProgress` or None) is told when the sweep passed its
    checks (``begin``) and follows the study while Tune runs (``attach``, ``detach``)."""
    from sweeps.run.context import open_context
    from sweeps.run.ray_start import start_ray

    t0 = time.perf_counter()
    given, spec = spec, spec.resolved()  # the stores, resolved once for the whole command
    stores = spec.stores
    root = Path(stores.root)
    saved = spec_path(root, spec.name)
    if saved.exists() or ("://" not in stores.ray_storage and (Path(stores.ray_storage) / spec.name).exists()):
        raise SweepExistsError(
            f"sweep {spec.name!r} already exists under {root}; run `sweeps resume {spec.name}` to continue it, "
            f"or give the spec another name"
        )
    preflight(stores)  # each store reachable and usable, else one line per store (StoreError)
    _check_data(spec)
    quiet_optuna()  # from here on Optuna loads: one line per trial is the progress line's job
    if progress is not None:
        progress.begin(spec)
    if address or os.environ.get("RAY_ADDRESS") or spec.resources.gpus > 0:
        start_ray(address, spec)  # may refuse the spec (stores a cluster cannot reach, no GPU) first
        connections = None
    else:  # nothing a local CPU Ray finds can refuse the spec: connect to the stores while it starts
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeps-warm-up") as pool:
            warm = pool.submit(_connect, stores)
            start_ray(address, spec)
            connections = _or_stop_ray(warm.result)
    root.mkdir(parents=True, exist_ok=True)
    ctx = _or_stop_ray(open_context, spec, create=True, connections=connections)
    save_spec(given, root)  # as the user wrote it: its stores resolve wherever it is read
    from sweeps.tracking import runs as tracking

    shown = redact(spec.to_dict())  # what people browse never holds a store password
    ctx.client.log_dict(ctx.parent_run_id, shown, "spec.yaml")
    tracking.log_params(
        ctx.client, ctx.parent_run_id, {**tracking.flatten("", shown), "objectives": ",".join(OBJECTIVES)},
        tags={"mlflow.note.content": f"Sweep {spec.name}: Pareto front of {' vs '.join(OBJECTIVES)}"},
    )
    return _fit(ctx, progress=progress, t0=t0)


def resume_sweep(name: str, root: str | None = None, address: str | None = None, progress: Any = None) -> SweepOutcome:
    """Continue a stopped sweep without repeating finished trials or duplicating runs.

    The run is rebuilt from the stores of record, the Optuna study and MLflow, and nothing of Ray
    Tune's experiment state in ``ray_storage`` is read (it is pickled: write access to a bucket or
    NFS volume would otherwise mean code execution here). What the study holds as running was lost
    with the stopped driver: `reconcile` marks it FAIL ("orphaned"), and the study's plan asks
    again for whatever the budget still lacks; finished trials are never rerun."""
    t0 = time.perf_counter()
    return _reopen(saved_spec(name, root), address, progress=progress, t0=t0)


def confirm_sweep(name: str, top: int | None = None, seeds: int | None = None, root: str | None = None,
                  address: str | None = None, progress: Any = None, budget: int | None = None) -> SweepOutcome:
    """Add seed replicates to a sweep (`SweepSpec.confirm`, these ``top``, ``seeds`` and ``budget``
    where given): the saved spec takes the new section, then a fresh run of the plan trains what
    it lacks (a sweep not yet finished finishes its search first). Replicates already there are
    kept; a larger ``budget`` lets the later looks add seeds where the claims need them."""
    t0 = time.perf_counter()
    saved = saved_spec(name, root).to_dict()
    section = saved["confirm"] or {}
    section.update({k: v for k, v in (("top", top), ("seeds", seeds), ("budget", budget)) if v is not None})
    spec = SweepSpec.from_dict({**saved, "confirm": section})  # validated as a whole
    return _reopen(spec, address, progress=progress, t0=t0, save=True)


def _reopen(spec: SweepSpec, address: str | None, progress: Any, t0: float, save: bool = False) -> SweepOutcome:
    """Resume or confirm: check the stores, open the sweep in them, reconcile (no driver runs it:
    what the study holds as running was lost), start Ray, fit a new Tuner over the study's plan."""
    from sweeps.run.context import open_context
    from sweeps.run.ray_start import start_ray

    given, spec = spec, spec.resolved()  # the stores, resolved once for the whole command
    preflight(spec.stores)
    quiet_optuna()
    ctx = open_context(spec, create=False)
    if save:
        save_spec(given, ctx.stores.root)
    reconcile(ctx)
    start_ray(address, spec)
    return _fit(ctx, progress=progress, t0=t0)


def _or_stop_ray(fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``; if it raises, the Ray this command started is shut down first."""
    try:
        return fn(*args, **kwargs)
    except BaseException:
        import ray

        ray.shutdown()
        raise


def _connect(stores: Any) -> tuple[Any, Any]:
    """Run beside `ray.init`, while the driver mostly waits: connect to the tracking and study
    stores (creating an embedded store's tables; nothing of the sweep is written), and import what
    the sweep's summary draws with (matplotlib; scikit-learn for Optuna's fANOVA). Their first-use
    costs then leave the sweep's start-up and its tail. Returns the MLflow client and the Optuna
    storage, which `open_context` then uses."""
    from mlflow.tracking import MlflowClient

    from sweeps.search.study import storage
    from sweeps.tracking.auth import use_store_credentials

    use_store_credentials(stores.mlflow_tracking_uri)  # an http server's password: a header, never the environment
    client = MlflowClient(stores.mlflow_tracking_uri)
    client.search_experiments(max_results=1)
    optuna_storage = storage(stores.optuna_storage)
    import optuna.importance  # noqa: F401  (its fANOVA evaluator imports scikit-learn)

    import dashboards.report  # noqa: F401

    return client, optuna_storage


def _check_data(spec: SweepSpec) -> None:
    """Load the dataset once in the driver so a missing one fails before anything is created."""
    from sparsity.data import load_dataset

    load_dataset(spec.dataset)


def _fit(ctx: "RunContext", progress: Any, t0: float) -> SweepOutcome:
    """Run a new Tuner over the study's plan, then reconcile the stores and log the sweep's summary.
    ``t0`` is when the command started: the sweep's seconds include set-up and the summary."""
    import ray

    from sweeps.run import ray_private
    from sweeps.results.read import SweepReader
    from sweeps.run.ray_start import concurrency
    from sweeps.run.tune import make_tuner, node_error

    spec = ctx.spec
    # Our own progress lines (sweeps.cli.progress) replace Tune's tables and banners.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ctrl-C, SIGTERM and SIGHUP (`sweeps stop` sends SIGTERM to a submitted job) stop the command at
    # once (sweeps.shutdown): Ray is shut down, then the trials it was running are marked (`_stopped`)
    # and `resume` continues the rest. Tune's own SIGINT handler would end the run as if complete.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    finished, failed_node = False, None
    try:
        at_once = concurrency(spec)  # `max_concurrent: auto`: what the Ray just started or joined fits
        if spec.budget.is_auto:
            log.info("max_concurrent auto: %d trials at a time", at_once)
        tuner = make_tuner(ctx, max_concurrent=at_once)
        if progress is not None:
            progress.attach(dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, max_concurrent=at_once)))
        with ray_private.actors_on_prestarted_workers():
            results = tuner.fit()
        finished = True
        failed_node = node_error(results)
    except KeyboardInterrupt:
        ray.shutdown()  # no trial runs any more: what the stores hold as running was stopped
        _stopped(ctx)
        raise
    finally:
        if progress is not None:
            progress.detach()
        if not finished:
            ray.shutdown()
    if failed_node is not None:  # a node cannot run the trials: the sweep ends with that one line
        ray.shutdown()
        reconcile(ctx)
        ctx.client.set_terminated(ctx.parent_run_id, "FAILED")
        raise NodeError(failed_node)
    seconds = time.perf_counter() - t0
    # Ray's processes stop while the summary is written: neither needs the other, both are the tail.
    stopping = threading.Thread(target=ray.shutdown, name="sweeps-ray-shutdown")
    stopping.start()
    try:
        reconcile(ctx)  # Ray has finished every trial it knows: what Optuna still holds as RUNNING was lost
        reader = SweepReader.of(spec, ctx.study.study.get_trials(deepcopy=False))  # the summary and the outcome's
        _log_sweep_summary(ctx, reader, seconds)
        ctx.client.set_terminated(ctx.parent_run_id, "FINISHED")
    finally:
        stopping.join()
    total = time.perf_counter() - t0  # the command's wall time, summary included
    return SweepOutcome(spec.name, reader.trials, reader.front, total, ctx.experiment_id, ctx.parent_run_id,
                        ctx.stores.mlflow_tracking_uri)


def _stopped(ctx: "RunContext") -> None:
    """A stopped sweep leaves nothing RUNNING: its interrupted trials become FAIL ("orphaned") in
    Optuna and their MLflow runs FAILED, the parent run KILLED; `sweeps resume` runs what is left."""
    name = ctx.spec.name
    try:
        fixed = reconcile(ctx)
        ctx.client.set_terminated(ctx.parent_run_id, "KILLED")
        log.warning("stopped %s: trials %s recorded as stopped; `sweeps resume %s` continues the sweep",
                    name, fixed["orphaned"] or "none", name)
    except Exception as e:  # the stop itself must not fail: the stores are marked by `resume` then
        log.warning("stopped %s, but could not mark its stores (%s); `sweeps resume %s` will", name, e, name)


def _log_sweep_summary(ctx: "RunContext", reader: Any, seconds: float) -> None:
    """The parent run's summary: the front, the HTML report and its plots, the trial counts, all
    from the one reader (`sweeps.results.read.SweepReader`) the outcome is built from too."""
    from dashboards.plotdata import importances
    from dashboards.report import sweep_figures, sweep_report

    from sweeps.replay.reference import random_reference
    from sweeps.results.read import plain_trials, report_input
    from sweeps.search.record import trial_row
    from sweeps.tracking import runs as tracking

    client, parent = ctx.client, ctx.parent_run_id
    client.log_dict(parent, {"pareto_front": [trial_row(t) for t in reader.front]}, "pareto_front.json")
    if reader.claims is not None:  # what `best` claims of the knee, the same verdicts and lines
        client.log_dict(parent, {"chosen": reader.knee, **reader.claims.to_dict()}, "claims.json")
    plain = plain_trials(reader.trials)
    # Importances are fitted once, here, and kept with the study: reports read them, never refit.
    imps = importances(plain, OBJECTIVES)
    ctx.study.study.set_user_attr(rec.IMPORTANCES, imps)
    client.log_dict(parent, imps, "importances.json")
    report = report_input(reader, random_reference(ctx.spec))  # reads them back from the study
    figures = sweep_figures(report, plain)
    client.log_text(parent, sweep_report(report, plain, figures), "report.html")  # every figure, interactive
    counts = reader.counts
    tracking.log_metrics(
        client, parent,
        {"trials_complete": counts["COMPLETE"], "trials_failed": counts["FAIL"],
         "trials_pruned": counts["PRUNED"], "pareto_size": len(reader.front), "sweep_seconds": seconds},
        step=0,
    )


# -- reconciling -----------------------------------------------------------------------------------

_RUN_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}


def reconcile(ctx: "RunContext") -> dict[str, list[int]]:
    """Bring Optuna and MLflow into agreement once Ray has finished the sweep: orphaned RUNNING
    Optuna trials become FAIL, and each trial's MLflow run takes the status of its Optuna trial."""
    from sweeps.tracking import runs as tracking

    orphans = ctx.study.reconcile()
    by_number = {t.number: t for t in ctx.study.study.get_trials(deepcopy=False)}
    fixed = []
    for run in tracking.find_runs(ctx.client, ctx.experiment_id, {tracking.TAG_SWEEP: ctx.spec.name,
                                                                   tracking.TAG_KIND: "trial"}):
        t = by_number.get(int(run.data.tags.get(tracking.TAG_OPTUNA, -1)))
        want = _RUN_STATUS.get(t.state.name) if t else None
        if want and run.info.status != want:
            if t.state.name == "PRUNED":
                ctx.client.set_tag(run.info.run_id, "sweeps.stopped_early", f"epoch {t.user_attrs.get(rec.STOPPED_AT_EPOCH)}")
            if t.state.name == "FAIL" and rec.FAIL_REASON in t.user_attrs:
                ctx.client.set_tag(run.info.run_id, "sweeps.error", t.user_attrs[rec.FAIL_REASON])
            ctx.client.set_terminated(run.info.run_id, want)
            fixed.append(t.number)
    if orphans or fixed:
        log.info("reconciled %s: orphaned optuna trials %s, mlflow runs updated %s", ctx.spec.name, orphans, fixed)
    return {"orphaned": orphans, "runs_updated": fixed}
