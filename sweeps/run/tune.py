"""Ray Tune adapters over the sweep's search rules: nothing here decides anything.

* `SweepSearch`, a Tune `Searcher`: asks `SweepStudy` for the next trial (baselines first, then the
  sampler) and tells it each trial's last `TrialReport`; each trial's config carries its Optuna
  trial number, and each Optuna trial its Ray trial id.
* `RungScheduler`, a Tune `TrialScheduler`: runs `SuccessiveHalving` (ASHA or MO-ASHA) on each
  reported epoch and stops the trials it rules out.
* `make_tuner`: the Tuner of a run (`sweeps.run.context.RunContext`): the trainable with its
  resources and what each trial needs to find the stores, the searcher, the scheduler, the storage.

The replay simulator (`sweeps.replay`) drives the same `SweepStudy` and `SuccessiveHalving`.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from sweeps.search import record as rec
from sweeps.search.early_stopping import SuccessiveHalving
from sweeps.spec import SweepSpec
from sweeps.search.study import FINISHED, SweepStudy
from sweeps.search.trial_report import TrialReport

NODE_ERROR = "node_error"  # the result key of a trial whose node cannot run it (`sweeps.run.trainable`)

if TYPE_CHECKING:
    from sweeps.run.context import RunContext

__all__ = ["SweepSearch", "RungScheduler", "NodeErrorStop", "node_error", "make_tuner", "forwarded_env"]

log = logging.getLogger(__name__)


class SweepSearch(Searcher):
    """Tune's view of a `SweepStudy` in the sweep's Optuna storage."""

    def __init__(self, spec: SweepSpec, storage_url: str, study: SweepStudy | None = None) -> None:
        super().__init__()
        self._spec = spec
        self._storage_url = storage_url
        self._study: SweepStudy | None = study  # the run's own, or opened from the storage
        self._numbers: dict[str, int] = {}  # Ray trial id -> Optuna trial number
        self._done: set[str] = set()
        self.study  # open now: a study made by another tool is refused before any trial starts

    @property
    def study(self) -> SweepStudy:
        if self._study is None:
            self._study = SweepStudy.open(self._spec.study_plan(), self._storage_url)
        return self._study

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher with the experiment; the live study reopens from the storage.
        return {**self.__dict__, "_study": None}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the objectives are fixed: both of `trial_report.OBJECTIVES`, maximized

    def suggest(self, trial_id: str) -> dict | str | None:
        proposal = self.study.next_proposal()  # the plan decides how many trials there are
        if proposal is None:
            return None  # replicates wait for the search's last results: Tune asks again
        if proposal == FINISHED:
            return Searcher.FINISHED
        self.study.set_user_attr(proposal.number, "ray_trial_id", trial_id)
        self._numbers[trial_id] = proposal.number
        return {**proposal.config(), "optuna_trial_number": proposal.number}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._done or trial_id not in self._numbers:
            return
        if result is None and not error:
            return  # removed before it ran (driver stopping): left for resume to rerun or reconcile
        number = self._numbers[trial_id]
        if error:
            self.study.tell(number, None, error="raised an error after its retries; see its MLflow run")
        else:
            self.study.tell(number, TrialReport.from_result(result))
        self._done.add(trial_id)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "w") as f:
            json.dump({"numbers": self._numbers, "done": sorted(self._done)}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)  # plain data: nothing in Ray's storage is unpickled here
        self._numbers = {k: int(v) for k, v in state["numbers"].items()}
        self._done = set(state["done"])


class RungScheduler(FIFOScheduler):
    """Tune's view of `SuccessiveHalving`: each epoch's report goes to the rule, which may stop it."""

    def __init__(self, rule: SuccessiveHalving) -> None:
        super().__init__()
        self.rule = rule

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if rec.REPLICATE_OF in (trial.config or {}):
            return TrialScheduler.CONTINUE  # a seed replicate confirms a config: it runs to the end
        go_on = self.rule.decide(trial.trial_id, TrialReport.from_result(result))
        return TrialScheduler.CONTINUE if go_on else TrialScheduler.STOP

    def debug_string(self) -> str:
        return f"RungScheduler({self.rule.rule}, rungs at epochs {list(self.rule.rungs)})"


class NodeErrorStop(Stopper):
    """Stops the whole sweep once a trial reports that its node cannot run it (its data missing, its
    GPU unusable: `sweeps.run.trainable.NODE_ERROR`): every trial placed there would fail the same
    way, and retrying cannot mend it. The driver reads the line back with `node_error`."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get(NODE_ERROR):
            self.seen = True
            return True
        return False

    def stop_all(self) -> bool:
        return self.seen


def node_error(results: Any) -> str | None:
    """The first node error among a finished Tuner's results (its `ResultGrid`), else None."""
    for result in results:
        line = (result.metrics or {}).get(NODE_ERROR)
        if line:
            return str(line)
    return None


# -- the Tuner of a run ----------------------------------------------------------------------------

# Trials on other nodes do not inherit the driver's environment, so the driver's SPARSE_SWEEPS_*
# settings (data root, cache, ...) that are set go to every trial with its parameters. (Not as the
# job's runtime_env: a worker only hosts actors of its own runtime environment, so that would keep
# trials off the idle workers Ray prestarts.)
_FORWARDED_ENV_PREFIX = "SPARSE_SWEEPS_"
_PATH_ENVS = ("SPARSE_SWEEPS_DATA", "SPARSE_SWEEPS_CACHE")


def forwarded_env() -> dict[str, str]:
    """The driver's $SPARSE_SWEEPS_* settings for its trials: paths made absolute, store URLs
    without their passwords (those go with `trial_secrets`)."""
    from sweeps.stores.config import clean_env_value

    return {k: (os.path.abspath(os.path.expanduser(v)) if k in _PATH_ENVS else clean_env_value(k, v))
            for k, v in os.environ.items() if k.startswith(_FORWARDED_ENV_PREFIX) and v}


def _trainable(ctx: "RunContext"):
    from ray import tune

    from sweeps.run.trainable import run_trial
    from sweeps.stores.secrets import trial_secrets

    spec = ctx.spec
    fn = tune.with_parameters(
        run_trial, spec=spec, tracking_uri=ctx.stores.mlflow_tracking_uri, experiment_id=ctx.experiment_id,
        parent_run_id=ctx.parent_run_id, optuna_url=ctx.stores.optuna_storage,
        worker_env=forwarded_env(),  # passwords in memory, not in env, not on disk: $PGPASSWORD's too
        secrets=trial_secrets(ctx.stores.optuna_storage, ctx.stores.mlflow_tracking_uri),
    )
    resources = {"cpu": spec.resources.cpus}
    if spec.resources.gpus:
        resources["gpu"] = spec.resources.gpus
    return tune.with_resources(fn, resources)


def make_tuner(ctx: "RunContext", max_concurrent: int | None = None):
    """A new Tuner over the sweep's plan, its searcher asking the run's own study. Never
    `Tuner.restore`: Tune keeps its experiment state in ``ray_storage`` as pickles (tuner.pkl, the
    searcher's and scheduler's state), and whoever can write there could run code on the driver
    that unpickles them (`sweeps.run.service.resume_sweep` rebuilds the run from the stores of
    record instead). ``max_concurrent``: the trials at once (`sweeps.run.ray_start.concurrency`)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.search import ConcurrencyLimiter

    spec, trainable = ctx.spec, _trainable(ctx)
    rule = spec.stopping_rule()
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(SweepSearch(spec, ctx.stores.optuna_storage, ctx.study),
                                          max_concurrent=max_concurrent or spec.budget.concurrency(1)),
            scheduler=FIFOScheduler() if rule is None else RungScheduler(rule),
            num_samples=spec.total_trials,  # at most; the study's plan says when it is done (`SweepStudy.next_proposal`)
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            stop=NodeErrorStop(),
            storage_path=ctx.stores.ray_storage,
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            # Two checkpoints per trial, not one: Tune snapshots the whole experiment (every trial's
            # state, O(trials)) whenever a trial has checkpointed `num_to_keep` times since the last
            # snapshot, so that the snapshot never names a deleted checkpoint. With 1 that was a
            # snapshot per reported epoch of every trial: O(trials) work per trial, which made the
            # driver's time per trial grow threefold over a 2,000-trial sweep (docs/benchmarks/many-trials.md).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # Tune's JSON and CSV results; no TensorBoard files (MLflow has the metrics), which also
            # spares the driver tensorboardX's import (about 2 s).
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],
            verbose=0,
        ),
    )
