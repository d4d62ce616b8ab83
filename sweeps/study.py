"""The sweep's Optuna study and its rules, the same for a real sweep and for the replay simulator.

The study lives in Optuna storage (SQLite by default, any SQLAlchemy URL; in memory for the
simulator) under the sweep's name, with both objectives maximized, so the Pareto front is readable
without Ray. `SweepStudy` is the only code that asks the sampler and tells results:

* baselines first: each baseline of the spec is asked once, before any sampled config, as a trial
  with no sampled params (user attr ``baseline``), so the dense reference is on every front;
* then the sampler (`sweeps.samplers`) proposes; trials asked and not yet told stay RUNNING, which
  is how samplers that care (``tpe-mv``'s constant liar, ``gp``) see what is pending;
* `tell` records a `TrialReport`:
  - finished all epochs: COMPLETE with (val_accuracy, val_noise_score);
  - stopped early: PRUNED, its last values kept as user attrs (`early_val_accuracy`,
    `early_val_noise_score`, `stopped_at_epoch`): they come from an unfinished run, so they stay
    off the Pareto front;
  - a failure retrying cannot mend (NaN loss), or an error after its retries: FAIL with
    `fail_reason`;
* `reconcile` marks trials still RUNNING after Ray finished (a killed driver's) FAIL "orphaned".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SweepExistsError
from .samplers import make_sampler
from .trial_report import OBJECTIVES, TrialReport

if TYPE_CHECKING:
    import optuna

    from .spec import Param, SweepSpec

__all__ = ["Proposal", "SweepStudy", "DIRECTIONS", "storage", "load_study", "suggest"]

log = logging.getLogger(__name__)

DIRECTIONS = ["maximize", "maximize"]
ATTR_PARENT_RUN = "mlflow_parent_run_id"


def storage(url: str) -> "optuna.storages.BaseStorage":
    """An RDB storage for ``url`` (SQLite file or any SQLAlchemy URL)."""
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
    return optuna.storages.RDBStorage(url, **kwargs)


def load_study(name: str, store: "str | optuna.storages.BaseStorage") -> "optuna.Study | None":
    """The sweep's study, None if the storage (a URL, or a storage already open) has none."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage(store) if isinstance(store, str) else store)
    except KeyError:
        return None


def suggest(trial: Any, param: "Param") -> Any:
    """One parameter's value from an Optuna trial, by the spec's range or choices."""
    if param.choices is not None:
        return trial.suggest_categorical(param.name, list(param.choices))
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_float(param.name, float(param.low), float(param.high), log=param.log)


@dataclass(frozen=True)
class Proposal:
    """One trial to run: its Optuna number, the searched values (or the baseline's own), and the
    baseline's name for a baseline."""

    number: int
    params: dict[str, Any]
    baseline: str | None = None


class SweepStudy:
    """A sweep's study with the sweep's rules. Create one with `create`, `open` or `in_memory`."""

    def __init__(self, spec: "SweepSpec", study: "optuna.Study") -> None:
        got = [d.name.lower() for d in study.directions]
        if got != DIRECTIONS:
            raise SweepExistsError(
                f"study {study.study_name!r} has directions {got}, but sweeps maximize {list(OBJECTIVES)}; "
                f"it was not made by this tool: use another sweep name"
            )
        self.spec = spec
        self.study = study
        self._asked: dict[int, Any] = {}  # number -> optuna.Trial, asked in this process, not told yet
        self._baselines_asked = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)} - {None}

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def _sampler(cls, spec: "SweepSpec"):
        from .internals import searched_only

        return searched_only(make_sampler(spec.searcher.algorithm, spec.searcher.seed, spec.budget.trials,
                                         spec.searcher.startup_trials))

    @classmethod
    def create(cls, spec: "SweepSpec", store: "str | optuna.storages.BaseStorage") -> "SweepStudy":
        """A new study for the sweep; refuses a name already in this storage (resume it instead)."""
        import optuna

        st = storage(store) if isinstance(store, str) else store
        if any(s.study_name == spec.name for s in optuna.get_all_study_summaries(st)):
            raise SweepExistsError(
                f"a study named {spec.name!r} already exists in the Optuna storage; run `sweeps resume "
                f"{spec.name}` to continue it, or give the spec another name"
            )
        study = optuna.create_study(study_name=spec.name, storage=st, directions=DIRECTIONS, sampler=cls._sampler(spec))
        return cls(spec, study)

    @classmethod
    def open(cls, spec: "SweepSpec", store: "str | optuna.storages.BaseStorage") -> "SweepStudy":
        """The sweep's existing study (created if missing: a driver killed before it wrote one)."""
        import optuna

        st = storage(store) if isinstance(store, str) else store
        study = optuna.create_study(study_name=spec.name, storage=st, directions=DIRECTIONS,
                                    sampler=cls._sampler(spec), load_if_exists=True)
        return cls(spec, study)

    @classmethod
    def in_memory(cls, spec: "SweepSpec") -> "SweepStudy":
        """A study in Optuna's in-memory storage (the replay simulator's)."""
        import optuna

        return cls.create(spec, optuna.storages.InMemoryStorage())

    # -- asking and telling ---------------------------------------------------------------------------

    def _next_baseline(self):
        return next((b for b in self.spec.baselines if b.name not in self._baselines_asked), None)

    def ask(self) -> Proposal:
        """The next trial: a baseline not yet asked, else the sampler's proposal."""
        trial = self.study.ask()
        baseline = self._next_baseline()
        if baseline is not None:
            params = dict(baseline.params)
            trial.set_user_attr("baseline", baseline.name)
            self._baselines_asked.add(baseline.name)
        else:
            params = {p.name: suggest(trial, p) for p in self.spec.space}
        trial.set_user_attr("config", {**({"baseline": baseline.name} if baseline else {}), **params})
        self._asked[trial.number] = trial
        return Proposal(trial.number, params, baseline.name if baseline else None)

    def set_user_attr(self, number: int, key: str, value: Any) -> None:
        self._trial(number).set_user_attr(key, value)

    def _trial(self, number: int):
        if number in self._asked:
            return self._asked[number]
        from .internals import trial_handle

        return trial_handle(self.study, number)

    def is_finished(self, number: int) -> bool:
        from .internals import trial_state

        return trial_state(self.study, number).is_finished()

    def tell(self, number: int, report: TrialReport | None, *, error: str | None = None) -> None:
        """Record how trial ``number`` ended: ``report`` is its last report (None with ``error``: it
        raised after its retries). A trial already finished keeps its first record."""
        from optuna.trial import TrialState

        if self.is_finished(number):
            self._asked.pop(number, None)
            return
        trial = self._trial(number)
        if error is not None or report is None:
            self._tell(number, None, TrialState.FAIL, error or "ended without a report")
        elif report.error:
            self._tell(number, None, TrialState.FAIL, report.error)
        elif not report.final:
            trial.set_user_attr("stopped_at_epoch", report.epoch)
            if report.val_accuracy is not None:
                trial.set_user_attr("early_val_accuracy", report.val_accuracy)
            if report.val_noise_score is not None:
                trial.set_user_attr("early_val_noise_score", report.val_noise_score)
            self._tell(number, None, TrialState.PRUNED)
        elif report.objectives is None or not all(math.isfinite(v) for v in report.objectives):
            self._tell(number, None, TrialState.FAIL, f"non-finite objectives {report.objectives}")
        else:
            for key in ("test_accuracy", "test_noise_score", "noise_max", "val_curve", "test_curve"):
                value = getattr(report, key)
                if value is not None:
                    trial.set_user_attr(key, value)
            self._tell(number, list(report.objectives), TrialState.COMPLETE)

    def _tell(self, number: int, values: list[float] | None, state, fail_reason: str | None = None) -> None:
        if fail_reason:
            self._trial(number).set_user_attr("fail_reason", fail_reason)
        try:
            self.study.tell(number, values, state=state)
        except Exception as e:  # finished elsewhere meanwhile (reconciled): keep the first record
            log.warning("optuna trial %s: %s", number, e)
        self._asked.pop(number, None)

    def reconcile(self) -> list[int]:
        """Mark trials still RUNNING (or WAITING) as FAIL "orphaned"; returns their numbers. Call it
        only when no trial of the sweep is running (Ray has finished)."""
        from optuna.trial import TrialState

        from .internals import fail_trial

        orphans = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            self._trial(t.number).set_user_attr("fail_reason", "orphaned: the driver stopped before it was recorded")
            fail_trial(self.study, t.number)
            self._asked.pop(t.number, None)
            orphans.append(t.number)
        return orphans
