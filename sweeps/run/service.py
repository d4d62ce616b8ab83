"""Launch, resume and reconcile sweeps: the three stores, one owner each.

* Ray's storage path holds the experiment state and trial checkpoints (resume continues it);
* the Optuna study holds proposals and objective values (the Pareto front);
* MLflow holds what people browse: a parent run per sweep, a nested run per trial.

Each trial's MLflow run is tagged with its Optuna trial number and Ray trial id, and each Optuna
trial with its Ray trial id, so `reconcile` can bring the three into agreement after a crash.
A local copy of the spec (ROOT/specs/NAME.yaml) lets `resume`, `status` and `best` find the stores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.run import tune as search
from sweeps import shutdown
from sweeps.tracking import runs as tracking
from sweeps.search import study as study_store
from sweeps.search.early_stopping import SuccessiveHalving
from sweeps.errors import SweepExistsError
from sweeps.search.study import SweepStudy
from sweeps.spec import OBJECTIVES, SpecError, SweepSpec, load_spec
from sweeps.stores.config import clean_env_value, preflight, trial_secrets

log = logging.getLogger(__name__)

from sweeps.stores.paths import ROOT_ENV, default_root
# Reading results (saved spec, trials, front) lives in sweeps.results.read, which imports no Ray.
from sweeps.results.read import list_sweeps, pareto_front, saved_spec, spec_path, sweep_status, trial_row  # noqa: F401


@dataclass(frozen=True)
class SweepOutcome:
    name: str
    trials: list[FrozenTrial]
    front: list[FrozenTrial]
    seconds: float
    mlflow_experiment_id: str
    parent_run_id: str


# -- launching ------------------------------------------------------------------------------------

def _init_ray(address: str | None, spec: SweepSpec) -> None:
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False)
        shutdown.rearm()  # ray.init took SIGTERM over: a signal stops the command as Ctrl-C does
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        local, unshared = spec.stores.local_only(), spec.stores.unshared_paths()
        if len(nodes) > 1 and (local or unshared):
            ray.shutdown()
            problems = []
            if local:
                problems.append(
                    f"{', '.join(local)}: a SQLite store is reachable from this machine only, but the cluster at "
                    f"{address} has {len(nodes)} nodes; set it to a server every node reaches "
                    f"(e.g. postgresql://... for optuna_storage, http://mlflow:5000 for mlflow_tracking_uri)"
                )
            if unshared:
                problems.append(
                    f"{', '.join(unshared)}: a folder on this machine's disk, but the cluster at {address} has "
                    f"{len(nodes)} nodes; use s3://... or gs://... (for mlflow_artifact_location, or an MLflow "
                    f"server started with --serve-artifacts), or set stores.shared_filesystem: true if the path "
                    f"is a shared volume (NFS) mounted at the same path on every node"
                )
            raise SpecError("; ".join(problems))
        gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
        if spec.resources.gpus > 0 and gpus == 0:
            # GPU workers may autoscale from zero: count what the autoscaler can add.
            gpus = _autoscaling_gpus()
            if gpus is None:  # no autoscaler config to ask: do not refuse what may come
                log.warning("resources.gpus: no GPU node is up in the cluster at %s; trials wait for one", address)
                gpus = spec.resources.gpus
    else:
        _init_local_ray(num_cpus=max(spec.budget.max_concurrent, 1) * max(1, int(spec.resources.cpus)))
        gpus = ray.cluster_resources().get("GPU", 0)
    if spec.resources.gpus > 0 and gpus == 0:
        ray.shutdown()
        raise SpecError(
            f"resources.gpus: {spec.resources.gpus} GPU per trial requested, but the Ray cluster has no GPU; "
            f"set resources.gpus: 0 or connect to a GPU cluster with --address"
        )


LOOPBACK = "127.0.0.1"


def _init_local_ray(num_cpus: int) -> None:
    """Start a local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only.

    Ray turns a node IP of 127.0.0.1 into the machine's outward address when it may form a cluster
    (Linux), and its gRPC servers then listen on every interface; with clusters off for the start it
    keeps 127.0.0.1 and binds there. Ray's token authentication (on by default) stays as it is.
    Refuses to run if Ray did not take the loopback address (nothing open by default).
    """
    import ray
    from ray._private import ray_constants  # private: where Ray decides how a node's IP resolves

    clusters = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        for attempt in (1, 2):
            try:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         _node_ip_address=LOOPBACK, _system_config=_local_system_config())
                break
            except Exception as e:
                # Ray gives a starting node 30 s to register (fixed); on a busy machine its raylet, waiting
                # for its agents, can miss that once. A second start finds their imports cached.
                if attempt == 2 or "timed out during startup" not in str(e):
                    raise
                log.warning("the local Ray did not start in time (a busy machine?); starting it again")
                ray.shutdown()
    finally:
        if clusters is not None:
            ray_constants.ENABLE_RAY_CLUSTER = clusters
        _protect_token()
    shutdown.rearm()  # ray.init took SIGTERM over: a signal stops the command as Ctrl-C does
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(f"the local Ray took node address {node_ip}, not {LOOPBACK}: it would listen beyond "
                           f"this machine; refusing to run (this Ray version binds differently: report it)")


def ray_token_file() -> Path:
    """Where Ray keeps the token a local Ray generates (token auth on by default): ~/.ray/auth_token."""
    return Path.home() / ".ray" / "auth_token"


def _protect_token() -> None:
    """The Ray token file readable by its owner alone: Ray writes it with the process's umask
    (usually 0644), and the token lets anyone who reads it run code through this user's Ray."""
    path = ray_token_file()
    try:
        if path.is_file() and path.stat().st_uid == os.getuid():
            os.chmod(path, 0o600)
            os.chmod(path.parent, 0o700)
    except OSError as e:  # a read-only home: say so, never fail the sweep on it
        log.warning("could not make %s readable by its owner alone (%s); run chmod 600 on it", path, e)


# A local Ray starts one idle worker per CPU with `ray.init`, and Tune's trial actors take those
# workers: they import what a trial needs as they start (sweeps.run.worker), while the driver sets up
# the sweep. Not for cluster nodes: there a fresh worker is not ready until its imports end, and in
# the two-node test Ray stopped such workers while the head's actor took every trial (cluster/).
WORKER_PRELOAD = ("sweeps.run.worker",)

# The local Ray never kills idle workers. Its raylet kills (every 200 ms) the idle workers that have
# been idle over 1 s beyond as many as there are *available* CPUs, and Tune reserves a trial's CPU (a
# placement group) before it asks for the trial's actor: each reservation made a prestarted worker
# still waiting for its actor surplus, Ray killed it and started a fresh worker for the actor, which
# paid the imports again (Ray 2.60, raylet debug log: "Number of idle workers 2 is larger than the
# number of desired workers 1 killing idle worker"; worker log: "idle for a long time"). It hit
# whenever the workers had been idle over 1 s when Tune started (a sweep's set-up takes longer), and
# on a busy machine even in the bare probe of tests/test_worker_start.py. The cost: idle workers
# stay until the sweep ends (with resources.cpus > 1 some prestarted ones are never used).
_LOCAL_RAY_CONFIG: dict[str, Any] = {
    "preload_python_modules": list(WORKER_PRELOAD),
    "kill_idle_workers_interval_ms": 0,
}


def _local_system_config() -> dict[str, Any]:
    """Ray settings for the local Ray; one set in the environment (RAY_<name>) is left to it."""
    return {k: v for k, v in _LOCAL_RAY_CONFIG.items() if not os.environ.get(f"RAY_{k}")}


# Trials on other nodes do not inherit the driver's environment, so the driver's SPARSE_SWEEPS_*
# settings (data root, cache, ...) that are set go to every trial with its parameters. (Not as the
# job's runtime_env: a worker only hosts actors of its own runtime environment, so that would keep
# trials off the idle workers Ray prestarts.)
_FORWARDED_ENV_PREFIX = "SPARSE_SWEEPS_"
_PATH_ENVS = ("SPARSE_SWEEPS_DATA", "SPARSE_SWEEPS_CACHE")


def _autoscaling_gpus() -> float | None:
    """GPUs the cluster's autoscaler can bring up (its node groups' maximum), None if unknown."""
    try:
        from ray._private.state import state

        limits = state.get_max_resources_from_cluster_config()
    except Exception:  # a private API: unknown rather than wrong
        return None
    return None if limits is None else float(limits.get("GPU", 0))


def _forwarded_env() -> dict[str, str]:
    """The driver's $SPARSE_SWEEPS_* settings for its trials: paths made absolute, store URLs
    without their passwords (those go with `trial_secrets`)."""
    return {k: (os.path.abspath(os.path.expanduser(v)) if k in _PATH_ENVS else clean_env_value(k, v))
            for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV_PREFIX) and v}


def _experiment_path(spec: SweepSpec) -> str:
    """Ray's experiment folder for the sweep: a local path, or a URI (s3://, gs://) kept as one."""
    storage = spec.stores.resolved().ray_storage
    return f"{storage.rstrip('/')}/{spec.name}" if "://" in storage else str(Path(storage) / spec.name)


def _tuner(spec: SweepSpec, searcher: search.SweepSearch, trainable: Any):
    """A new Tuner over the sweep's plan. Never `Tuner.restore`: Tune keeps its experiment state in
    ``ray_storage`` as pickles (tuner.pkl, the searcher's and scheduler's state), and whoever can
    write there could run code on the driver that unpickles them (see `resume_sweep`)."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    stores = spec.stores.resolved()
    rule = SuccessiveHalving.from_spec(spec)
    scheduler = FIFOScheduler() if rule is None else search.RungScheduler(rule)
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=spec.budget.max_concurrent),
            scheduler=scheduler,
            num_samples=spec.total_trials,  # at most; the study's plan says when it is done (`SweepStudy.next_proposal`)
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=stores.ray_storage,
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            # Tune's JSON and CSV results; no TensorBoard files (MLflow has the metrics), which also
            # spares the driver tensorboardX's import (about 2 s).
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],
            verbose=0,
        ),
    )


def _trainable(spec: SweepSpec, tracking_uri: str, experiment_id: str, parent_run_id: str):
    from ray import tune

    from sweeps.run.trainable import run_trial

    fn = tune.with_parameters(
        run_trial, spec=spec, tracking_uri=tracking_uri, experiment_id=experiment_id,
        parent_run_id=parent_run_id, optuna_url=spec.stores.resolved().optuna_storage,
        worker_env=_forwarded_env(), secrets=trial_secrets(),  # passwords in memory: not in env, not on disk
    )
    resources = {"cpu": spec.resources.cpus}
    if spec.resources.gpus:
        resources["gpu"] = spec.resources.gpus
    return tune.with_resources(fn, resources)


@contextlib.contextmanager
def _trial_actors_on_prestarted_workers():
    """Let Tune's trial actors start on the idle workers Ray prestarted (and preloaded).

    A worker only hosts an actor whose runtime environment hashes like its own, and Tune gives every
    trial actor ``env_vars={"PL_DISABLE_FORK": "1"}`` (a PyTorch Lightning setting, meaningless
    here): that alone makes Ray start a fresh worker, and pay its imports, for each actor. Without
    it the actors take the prestarted workers. Ray's own list of variables to forward is kept.
    """
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # a Ray without this module: trials start on fresh workers, as before
        class_cache = None
    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if not isinstance(defaults, dict) or "PL_DISABLE_FORK" not in defaults:
        yield
        return
    value = defaults.pop("PL_DISABLE_FORK")
    try:
        yield
    finally:
        defaults["PL_DISABLE_FORK"] = value


def _mlflow(spec: SweepSpec, create: bool) -> tuple[Any, str, str]:
    from mlflow.tracking import MlflowClient

    stores = spec.stores.resolved()
    tracking.check_reachable(stores.mlflow_tracking_uri)
    client = MlflowClient(stores.mlflow_tracking_uri)
    exp_id = tracking.experiment_id(client, spec.name, stores.mlflow_artifact_location)
    parent = tracking.parent_run(client, exp_id, spec.name, create=create)
    if parent is None:
        raise SpecError(f"sweep {spec.name!r} has no parent run in MLflow at {stores.mlflow_tracking_uri}")
    return client, exp_id, parent


def run_sweep(spec: SweepSpec, address: str | None = None, progress: Any = None) -> SweepOutcome:
    """Launch a new sweep: refuses a name whose spec, study or Ray experiment already exists."""
    t0 = time.perf_counter()
    stores = spec.stores.resolved()
    root = Path(stores.root)
    saved = spec_path(root, spec.name)
    ray_dir = Path(stores.ray_storage) / spec.name
    if saved.exists() or ("://" not in stores.ray_storage and ray_dir.exists()):
        raise SweepExistsError(
            f"sweep {spec.name!r} already exists under {root}; run `sweeps resume {spec.name}` to continue it, "
            f"or give the spec another name"
        )
    # Everything that can be wrong is checked before any store is written.
    preflight(spec.stores)  # each store reachable and usable, else one line per store (StoreError)
    _check_data(spec)
    if address or os.environ.get("RAY_ADDRESS") or spec.resources.gpus > 0:
        _init_ray(address, spec)  # may refuse the spec (stores a cluster cannot reach, no GPU) first
        root.mkdir(parents=True, exist_ok=True)
    else:  # nothing a local CPU Ray finds can refuse the spec: warm up while it starts
        root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweeps-warm-up") as pool:
            warm = pool.submit(_warm_up, stores)
            _init_ray(address, spec)
            try:
                warm.result()
            except BaseException:
                import ray

                ray.shutdown()
                raise
    client, exp_id, parent = _mlflow(spec, create=True)
    try:
        study = SweepStudy.create(spec, stores.optuna_storage).study
    except Exception:
        import ray

        ray.shutdown()
        raise
    study.set_user_attr(study_store.ATTR_PARENT_RUN, parent)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(spec.to_yaml())
    shown = tracking.redact(spec.to_dict())  # what people browse never holds a store password
    client.log_dict(parent, shown, "spec.yaml")
    tracking.log_params(
        client, parent, {**tracking.flatten("", shown), "objectives": ",".join(OBJECTIVES)},
        tags={"mlflow.note.content": f"Sweep {spec.name}: Pareto front of {' vs '.join(OBJECTIVES)}"},
    )
    return _fit(spec, client, exp_id, parent, address, progress=progress, t0=t0)


def resume_sweep(name: str, root: str | None = None, address: str | None = None, progress: Any = None) -> SweepOutcome:
    """Continue a stopped sweep without repeating finished trials or duplicating runs.

    The run is rebuilt from the stores of record, the Optuna study and MLflow, and nothing of Ray
    Tune's experiment state in ``ray_storage`` is read (it is pickled: write access to a bucket or
    NFS volume would otherwise mean code execution here). What the study holds as running was lost
    with the stopped driver: `reconcile` marks it FAIL ("orphaned"), and the study's plan asks
    again for whatever the budget still lacks; finished trials are never rerun."""
    t0 = time.perf_counter()
    spec = saved_spec(name, root)
    preflight(spec.stores)
    client, exp_id, parent = _mlflow(spec, create=False)
    study = study_store.load_study(spec.name, spec.stores.resolved().optuna_storage)
    if study is None:
        raise SpecError(f"sweep {name!r} has no Optuna study in {spec.stores.resolved().optuna_storage}")
    SweepStudy(spec, study)  # refuses a study this tool did not make
    reconcile(spec)  # no driver runs it now: what the study holds as running was lost
    return _fit(spec, client, exp_id, parent, address, progress=progress, t0=t0)


def confirm_sweep(name: str, top: int | None = None, seeds: int | None = None, root: str | None = None,
                  address: str | None = None, progress: Any = None) -> SweepOutcome:
    """Add seed replicates to a sweep (`SweepSpec.confirm`, these ``top`` and ``seeds`` where
    given): the saved spec takes the new section, then a fresh run of the plan trains what it
    lacks (a sweep not yet finished finishes its search first). Replicates already there are kept."""
    import dataclasses

    from sweeps.spec import Confirm

    t0 = time.perf_counter()
    spec = saved_spec(name, root)
    base = spec.confirm or Confirm()
    confirm = Confirm(top=base.top if top is None else top, seeds=base.seeds if seeds is None else seeds)
    spec = SweepSpec.from_dict({**spec.to_dict(), "confirm": dataclasses.asdict(confirm)})  # validated as a whole
    preflight(spec.stores)
    client, exp_id, parent = _mlflow(spec, create=False)
    study = study_store.load_study(spec.name, spec.stores.resolved().optuna_storage)
    if study is None:
        raise SpecError(f"sweep {name!r} has no Optuna study in {spec.stores.resolved().optuna_storage}")
    SweepStudy(spec, study)  # refuses a study this tool did not make
    spec_path(Path(spec.stores.resolved().root), spec.name).write_text(spec.to_yaml())
    reconcile(spec)  # no driver runs it now: what the study holds as running was lost
    return _fit(spec, client, exp_id, parent, address, progress=progress, t0=t0)


def _warm_up(stores: Any) -> None:
    """Run beside `ray.init`, while the driver mostly waits: connect to the tracking and study
    stores once, creating an embedded store's tables (nothing of the sweep is written), and import
    what the sweep's summary draws with (matplotlib; scikit-learn for Optuna's fANOVA). Their
    first-use costs then leave the sweep's start-up and its tail."""
    from mlflow.tracking import MlflowClient

    MlflowClient(stores.mlflow_tracking_uri).search_experiments(max_results=1)
    study_store.storage(stores.optuna_storage)
    import optuna.importance  # noqa: F401  (its fANOVA evaluator imports scikit-learn)

    import dashboards.report  # noqa: F401


def _check_data(spec: SweepSpec) -> None:
    """Load the dataset once in the driver so a missing one fails before anything is created."""
    from sparsity.data import load_dataset

    load_dataset(spec.dataset)


def _fit(spec, client, exp_id, parent, address, progress: Any, t0: float) -> SweepOutcome:
    """Run a Tuner over the study's plan, then reconcile the stores and log the sweep's summary.
    ``t0`` is when the command started: the sweep's seconds include set-up and the summary."""
    import ray

    stores = spec.stores.resolved()
    # Our own progress lines (sweeps.cli.progress) replace Tune's tables and banners.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ctrl-C, SIGTERM and SIGHUP (`sweeps stop` sends SIGTERM to a submitted job) stop the command at
    # once (sweeps.shutdown): Ray is shut down, then the trials it was running are marked (`_stopped`)
    # and `resume` continues the rest. Tune's own SIGINT handler would end the run as if complete.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    _init_ray(address, spec)
    finished = False
    try:
        trainable = _trainable(spec, stores.mlflow_tracking_uri, exp_id, parent)
        tuner = _tuner(spec, search.SweepSearch(spec, stores.optuna_storage), trainable)
        if progress is not None:
            progress.attach(spec)
        with _trial_actors_on_prestarted_workers():
            tuner.fit()
        finished = True
    except KeyboardInterrupt:
        ray.shutdown()  # no trial runs any more: what the stores hold as running was stopped
        _stopped(spec, client, parent)
        raise
    finally:
        if progress is not None:
            progress.detach()
        if not finished:
            ray.shutdown()
    seconds = time.perf_counter() - t0
    # Ray's processes stop while the summary is written: neither needs the other, both are the tail.
    stopping = threading.Thread(target=ray.shutdown, name="sweeps-ray-shutdown")
    stopping.start()
    try:
        # Ray has finished every trial it knows: whatever Optuna still holds as RUNNING was lost.
        reconcile(spec)
        study = study_store.load_study(spec.name, stores.optuna_storage)
        front = pareto_front(study)
        _log_sweep_summary(client, parent, study, front, seconds, spec)
        client.set_terminated(parent, "FINISHED")
    finally:
        stopping.join()
    total = time.perf_counter() - t0  # the command's wall time, summary included
    return SweepOutcome(spec.name, study.get_trials(deepcopy=False), front, total, exp_id, parent)


def _stopped(spec: SweepSpec, client: Any, parent: str) -> None:
    """A stopped sweep leaves nothing RUNNING: its interrupted trials become FAIL ("orphaned") in
    Optuna and their MLflow runs FAILED, the parent run KILLED; `sweeps resume` runs what is left."""
    try:
        fixed = reconcile(spec)
        client.set_terminated(parent, "KILLED")
        log.warning("stopped %s: trials %s recorded as stopped; `sweeps resume %s` continues the sweep",
                    spec.name, fixed["orphaned"] or "none", spec.name)
    except Exception as e:  # the stop itself must not fail: the stores are marked by `resume` then
        log.warning("stopped %s, but could not mark its stores (%s); `sweeps resume %s` will", spec.name, e, spec.name)


def _log_sweep_summary(client, parent: str, study: optuna.Study, front: list[FrozenTrial], seconds: float,
                       spec: SweepSpec) -> None:
    from dashboards.report import sweep_figures, sweep_report

    from sweeps.results.read import report_input

    rows = [trial_row(t) for t in front]
    client.log_dict(parent, {"pareto_front": rows}, "pareto_front.json")
    trials = study.get_trials(deepcopy=False)
    report = report_input(spec, trials)
    figures = sweep_figures(report, trials)
    client.log_text(parent, sweep_report(report, trials, figures), "report.html")
    for name, fig in figures:
        client.log_figure(parent, fig, f"plots/{name.split(':')[0].lower().replace(' ', '_')}.png")
    states = [t.state for t in study.get_trials(deepcopy=False)]
    tracking.log_metrics(
        client, parent,
        {"trials_complete": states.count(TrialState.COMPLETE), "trials_failed": states.count(TrialState.FAIL),
         "trials_pruned": states.count(TrialState.PRUNED), "pareto_size": len(front), "sweep_seconds": seconds},
        step=0,
    )


# -- reconciling -----------------------------------------------------------------------------------

_RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.FAIL: "FAILED", TrialState.PRUNED: "KILLED"}


def reconcile(spec: SweepSpec) -> dict[str, list[int]]:
    """Bring Optuna and MLflow into agreement once Ray has finished the sweep: orphaned RUNNING
    Optuna trials become FAIL, and each trial's MLflow run takes the status of its Optuna trial."""
    stores = spec.stores.resolved()
    study = study_store.load_study(spec.name, stores.optuna_storage)
    orphans = SweepStudy(spec, study).reconcile() if study else []
    client, exp_id, _ = _mlflow(spec, create=False)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)} if study else {}
    fixed = []
    for run in tracking.find_runs(client, exp_id, {tracking.TAG_SWEEP: spec.name, tracking.TAG_KIND: "trial"}):
        number = int(run.data.tags.get(tracking.TAG_OPTUNA, -1))
        t = by_number.get(number)
        want = _RUN_STATUS.get(t.state) if t else None
        if want and run.info.status != want:
            if t.state == TrialState.PRUNED:
                client.set_tag(run.info.run_id, "sweeps.stopped_early", f"epoch {t.user_attrs.get('stopped_at_epoch')}")
            if t.state == TrialState.FAIL and "fail_reason" in t.user_attrs:
                client.set_tag(run.info.run_id, "sweeps.error", t.user_attrs["fail_reason"])
            client.set_terminated(run.info.run_id, want)
            fixed.append(number)
    if orphans or fixed:
        log.info("reconciled %s: orphaned optuna trials %s, mlflow runs updated %s", spec.name, orphans, fixed)
    return {"orphaned": orphans, "runs_updated": fixed}

