"""Optuna under Ray Tune: Ray's `OptunaSearch`, taught the sweep's rules.

The study lives in persistent storage (SQLite by default, any SQLAlchemy URL) under the sweep's
name, with both objectives maximized, so the Pareto front is readable without Ray. What the study
records for each way a trial can end:

* finished all epochs: COMPLETE with (val_accuracy, val_noise_score);
* stopped early by ASHA: PRUNED, its last values kept as user attrs (`early_val_accuracy`,
  `stopped_at_epoch`): they come from an unfinished run, so they stay off the Pareto front;
* raised (after its retries) or hit a NaN loss: FAIL, with the reason in `fail_reason`;
* lost by a killed driver and never rerun: FAIL with `fail_reason` "orphaned" (see `reconcile`).

Dense baselines are asked first, as trials with no sampled params (user attr `baseline`), so the
dense reference is on every sweep's front plot and in every Pareto comparison.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from .errors import SweepExistsError
from .spec import OBJECTIVES, Param, SweepSpec

log = logging.getLogger(__name__)

DIRECTIONS = ["maximize", "maximize"]
ATTR_SPEC = "spec_yaml"
ATTR_PARENT_RUN = "mlflow_parent_run_id"


def storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage for ``url`` (SQLite file or any SQLAlchemy URL)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
    return optuna.storages.RDBStorage(url, **kwargs)


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    seed = spec.searcher.seed
    if spec.searcher.algorithm == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, spec.budget.trials // 4 or 4)))
    if spec.searcher.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, spec.budget.trials // 3)))


def load_study(spec_name: str, store: str | optuna.storages.BaseStorage) -> optuna.Study | None:
    """The sweep's study, None if the storage (a URL, or a storage already open) has none."""
    try:
        return optuna.load_study(study_name=spec_name, storage=storage(store) if isinstance(store, str) else store)
    except KeyError:
        return None


def create_study(spec: SweepSpec, url: str) -> optuna.Study:
    """A new study for the sweep; refuses a name already in this storage (resume it instead)."""
    st = storage(url)
    if any(s.study_name == spec.name for s in optuna.get_all_study_summaries(st)):
        raise SweepExistsError(
            f"a study named {spec.name!r} already exists in {url}; run `sweeps resume {spec.name}` "
            f"to continue it, or give the spec another name"
        )
    study = optuna.create_study(study_name=spec.name, storage=st, directions=DIRECTIONS)
    study.set_user_attr(ATTR_SPEC, spec.to_yaml())
    return study


def check_directions(study: optuna.Study) -> None:
    got = [d.name.lower() for d in study.directions]
    if got != DIRECTIONS:
        raise SweepExistsError(
            f"study {study.study_name!r} has directions {got}, but sweeps maximize {list(OBJECTIVES)}; "
            f"it was not made by this tool: use another sweep name"
        )


def suggest(trial: Any, param: Param) -> Any:
    if param.choices is not None:
        return trial.suggest_categorical(param.name, list(param.choices))
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.name, float(param.low), float(param.high), log=param.log)


class SweepSearch(OptunaSearch):
    """`OptunaSearch` over the sweep's study: baselines first, then sampled configs; each trial's
    config carries its Optuna trial number, and each Optuna trial its Ray trial id."""

    def __init__(self, spec: SweepSpec, storage_url: str) -> None:
        self._spec = spec
        self._storage_url = storage_url
        super().__init__(
            space=self._space_fn,
            metric=list(OBJECTIVES),
            mode=["max", "max"],
            sampler=make_sampler(spec),
            study_name=spec.name,
            storage=storage(storage_url),
        )
        check_directions(self._ot_study)

    def _space_fn(self, trial: Any) -> None:
        for p in self._spec.space:
            suggest(trial, p)

    def _pending_baseline(self):
        done = {t.user_attrs.get("baseline") for t in self._ot_study.get_trials(deepcopy=False)}
        for b in self._spec.baselines:
            if b.name not in done:
                return b
        return None

    def suggest(self, trial_id: str) -> dict | None:
        ot_trial = self._ot_study.ask()
        baseline = self._pending_baseline()
        if baseline is not None:
            config: dict[str, Any] = {"baseline": baseline.name, **dict(baseline.params)}
            ot_trial.set_user_attr("baseline", baseline.name)
        else:
            config = self._suggest_from_define_by_run_func(self._space_fn, ot_trial)
        ot_trial.set_user_attr("ray_trial_id", trial_id)
        ot_trial.set_user_attr("config", config)
        self._ot_trials[trial_id] = ot_trial
        return {**config, "optuna_trial_number": ot_trial.number}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        return  # Optuna keeps no intermediate values for multi-objective studies

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        if self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished():
            # Recorded before the driver stopped; a restored Ray reports it again. Keep the first record.
            self._completed_trials.add(trial_id)
            return
        if error:
            self._tell(ot_trial, None, TrialState.FAIL, fail_reason="raised an error after its retries; see its MLflow run")
        elif result is None:
            return  # removed before it ran (driver stopping): left for resume to rerun or reconcile
        elif result.get("trial_error"):
            self._tell(ot_trial, None, TrialState.FAIL, fail_reason=str(result["trial_error"]))
        elif not result.get("final"):
            ot_trial.set_user_attr("stopped_at_epoch", int(result.get("epoch", 0)))
            ot_trial.set_user_attr("early_val_accuracy", float(result.get("val_accuracy", math.nan)))
            self._tell(ot_trial, None, TrialState.PRUNED)
        else:
            values = [float(result[m]) for m in OBJECTIVES]
            if all(math.isfinite(v) for v in values):
                for key in ("test_accuracy", "test_noise_score", "noise_max"):
                    if key in result:
                        ot_trial.set_user_attr(key, float(result[key]))
                for key in ("val_curve", "test_curve"):
                    curve = _nested(result, key)
                    if curve:
                        ot_trial.set_user_attr(key, curve)
                self._tell(ot_trial, values, TrialState.COMPLETE)
            else:
                self._tell(ot_trial, None, TrialState.FAIL, fail_reason=f"non-finite objectives {values}")
        self._completed_trials.add(trial_id)

    def _tell(self, ot_trial: Any, values: list[float] | None, state: TrialState, fail_reason: str | None = None) -> None:
        if fail_reason:
            ot_trial.set_user_attr("fail_reason", fail_reason)
        try:
            self._ot_study.tell(ot_trial, values, state=state)
        except Exception as e:  # already finished elsewhere (reconciled): keep the first record
            log.warning("optuna trial %s: %s", ot_trial.number, e)


def _nested(result: dict, key: str) -> dict | None:
    """``result[key]`` as a dict: Ray hands searchers flattened results ("val_curve/levels")."""
    if isinstance(result.get(key), dict):
        return result[key]
    prefix = key + "/"
    found = {k[len(prefix):]: v for k, v in result.items() if k.startswith(prefix)}
    return found or None


def reconcile_study(study: optuna.Study) -> list[int]:
    """Mark trials still RUNNING after Ray finished (a killed driver's, never rerun) as FAIL;
    returns their numbers. Call it only when no Ray trial of the sweep is running."""
    orphans = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "orphaned: the driver stopped before it was recorded")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        orphans.append(t.number)
    return orphans
