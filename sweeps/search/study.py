"""The sweep's Optuna study and its rules, the same for a real sweep and for the replay simulator.

The study lives in Optuna storage (SQLite by default, any SQLAlchemy URL; in memory for the
simulator) under the sweep's name, with both objectives maximized, so the Pareto front is readable
without Ray. `SweepStudy` is the only code that asks the sampler and tells results:

* baselines first: each baseline of the plan (`sweeps.search.plan.StudyPlan`) is asked once, before any sampled config, as a trial
  with no sampled params (user attr ``baseline``), so the dense reference is on every front;
* then the sampler (`sweeps.search.samplers`) proposes; trials asked and not yet told stay RUNNING, which
  is how samplers that care (``tpe-mv``'s constant liar, ``gp``) see what is pending;
* then, with the plan's confirmation, once every trial so far has finished: the replicates
  (`sweeps.search.confirm`), each a trial with no sampled params, user attrs ``replicate_of`` (the
  config's first trial), ``model_seed`` and, for a baseline's, ``baseline``. The sampler never
  sees baselines or replicates (`sweeps.search.optuna_private.searched_only`). `next_proposal` follows this
  plan from what the study holds, so a resumed sweep picks it up where it stopped: a trial
  orphaned by a stop does not count as asked and is asked again;
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

from sweeps.errors import SweepExistsError
from sweeps.search import record as rec
from sweeps.search.plan import Dimension, StudyPlan
from sweeps.search.record import OBJECTIVES, ORPHANED, is_orphaned, is_replicate, is_searched
from sweeps.search.samplers import make_sampler
from sweeps.search.trial_report import TrialReport

if TYPE_CHECKING:
    import optuna

__all__ = ["Proposal", "SweepStudy", "DIRECTIONS", "FINISHED", "storage", "load_study", "suggest", "is_replicate",
           "is_searched", "is_orphaned"]

log = logging.getLogger(__name__)

DIRECTIONS = ["maximize", "maximize"]
FINISHED = "finished"  # `next_proposal`: the plan is done


def quiet_optuna() -> None:
    """Optuna logs one line per in-memory study (the report's importances) unless told not to; it
    resets its level when imported, so commands that use it call this (optuna costs ~1 s to import,
    and commands that never touch it do not pay)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage(url: str) -> "optuna.storages.BaseStorage":
    """An RDB storage for ``url`` (SQLite file or any SQLAlchemy URL)."""
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 30}}
    return optuna.storages.RDBStorage(url, **kwargs)


def load_study(name: str, store: "str | optuna.storages.BaseStorage",
               sampler: "optuna.samplers.BaseSampler | None" = None) -> "optuna.Study | None":
    """The sweep's study, None if the storage (a URL, or a storage already open) has none."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage(store) if isinstance(store, str) else store,
                                 sampler=sampler)
    except KeyError:
        return None


def suggest(trial: Any, param: Dimension) -> Any:
    """One parameter's value from an Optuna trial, by the plan's range or choices."""
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
    replicate_of: int | None = None  # a replicate: the config's first trial
    seed: int | None = None  # a replicate's model seed (None: the spec's)

    def config(self) -> dict[str, Any]:
        """What the trial's `config` user attr and Ray config hold (`SweepSpec.trial` reads it)."""
        extra: dict[str, Any] = {rec.BASELINE: self.baseline} if self.baseline else {}
        if self.replicate_of is not None:
            extra.update({rec.REPLICATE_OF: self.replicate_of, "seed": self.seed})
        return {**extra, **self.params}


class SweepStudy:
    """A sweep's study with the sweep's rules. Create one with `create`, `open` or `in_memory`."""

    def __init__(self, plan: StudyPlan, study: "optuna.Study") -> None:
        if not isinstance(plan, StudyPlan):
            raise TypeError(f"SweepStudy takes a StudyPlan (SweepSpec.study_plan()), not {type(plan).__name__}")
        got = [d.name.lower() for d in study.directions]
        if got != DIRECTIONS:
            raise SweepExistsError(
                f"study {study.study_name!r} has directions {got}, but sweeps maximize {list(OBJECTIVES)}; "
                f"it was not made by this tool: use another sweep name"
            )
        self.plan = plan
        self.study = study
        self._asked: dict[int, Any] = {}  # number -> optuna.Trial, asked in this process, not told yet
        self._baselines_asked = {t.user_attrs.get(rec.BASELINE) for t in study.get_trials(deepcopy=False)} - {None}

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def _sampler(cls, plan: StudyPlan):
        from sweeps.search.optuna_private import searched_only

        return searched_only(make_sampler(plan.sampler, plan.sampler_seed, plan.trials, plan.startup_trials))

    @classmethod
    def create(cls, plan: StudyPlan, store: "str | optuna.storages.BaseStorage") -> "SweepStudy":
        """A new study for the sweep; refuses a name already in this storage (resume it instead)."""
        import optuna

        st = storage(store) if isinstance(store, str) else store
        if any(s.study_name == plan.name for s in optuna.get_all_study_summaries(st)):
            raise SweepExistsError(
                f"a study named {plan.name!r} already exists in the Optuna storage; run `sweeps resume "
                f"{plan.name}` to continue it, or give the spec another name"
            )
        study = optuna.create_study(study_name=plan.name, storage=st, directions=DIRECTIONS, sampler=cls._sampler(plan))
        return cls(plan, study)

    @classmethod
    def open(cls, plan: StudyPlan, store: "str | optuna.storages.BaseStorage") -> "SweepStudy":
        """The sweep's existing study (created if missing: a driver killed before it wrote one)."""
        import optuna

        st = storage(store) if isinstance(store, str) else store
        study = optuna.create_study(study_name=plan.name, storage=st, directions=DIRECTIONS,
                                    sampler=cls._sampler(plan), load_if_exists=True)
        return cls(plan, study)

    @classmethod
    def load(cls, plan: StudyPlan, store: "str | optuna.storages.BaseStorage") -> "SweepStudy | None":
        """The sweep's existing study with the plan's sampler, None if the storage has none."""
        study = load_study(plan.name, store, sampler=cls._sampler(plan))
        return None if study is None else cls(plan, study)

    @classmethod
    def in_memory(cls, plan: StudyPlan) -> "SweepStudy":
        """A study in Optuna's in-memory storage (the replay simulator's)."""
        import optuna

        return cls.create(plan, optuna.storages.InMemoryStorage())

    # -- asking and telling ---------------------------------------------------------------------------

    def _next_baseline(self):
        return next((b for b in self.plan.baselines if b[0] not in self._baselines_asked), None)

    def ask(self) -> Proposal:
        """The next trial: a baseline not yet asked, else the sampler's proposal."""
        searched_before = self.searched_asked()  # counted before this trial exists
        trial = self.study.ask()
        baseline = self._next_baseline()
        if baseline is not None:
            name, values = baseline
            params = dict(values)
            trial.set_user_attr(rec.BASELINE, name)
            self._baselines_asked.add(name)
        else:
            params = {p.name: suggest(trial, p) for p in self.plan.space}
            self._searched_asked = searched_before + 1
        proposal = Proposal(trial.number, params, baseline[0] if baseline else None)
        trial.set_user_attr(rec.CONFIG, proposal.config())
        self._asked[trial.number] = trial
        return proposal

    # -- the plan: baselines, the search budget, then the replicates -------------------------------

    _searched_asked: int | None = None

    def searched_asked(self) -> int:
        """Searched trials asked so far (orphaned ones not counted: they are asked again)."""
        if self._searched_asked is None:
            trials = self.study.get_trials(deepcopy=False)
            self._searched_asked = sum(is_searched(t) and not is_orphaned(t) for t in trials)
        return self._searched_asked

    def next_proposal(self) -> "Proposal | None | str":
        """The plan's next trial; None while the replicates wait for trials still running (ask
        again later); `FINISHED` when nothing is left."""
        if self._next_baseline() is not None or self.searched_asked() < self.plan.trials:
            return self.ask()
        if not self.plan.confirms:
            return FINISHED
        from optuna.trial import TrialState

        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        if any(not is_replicate(t) for t in running):
            return None  # the candidates are known once every searched trial has its result
        trials = self.study.get_trials(deepcopy=False)
        sources = self._sources(trials)  # ranked once for both rounds' planning
        todo = self.replicates_left(trials, sources)
        if todo:
            return self.ask_replicate(*todo[0])
        later = self.later_replicates(trials, sources, waiting=bool(running))
        if later is None:
            return None  # the next look is planned on this look's results
        if not later:
            return FINISHED
        return self.ask_replicate(*later[0])

    def _sources(self, trials: list) -> list[Any]:
        """The first round's configs, by their first trials: the candidates by rank, then the baselines."""
        from sweeps.search.confirm import candidates

        searched = [t for t in trials if is_searched(t) and getattr(t.state, "name", "") == "COMPLETE" and t.values]
        sources = [searched[i] for i in candidates([t.values[:2] for t in searched], self.plan.confirm_top)]
        first_baselines: dict[str, Any] = {}
        for t in trials:
            name = t.user_attrs.get(rec.BASELINE)
            if name and not is_replicate(t) and not is_orphaned(t):
                first_baselines.setdefault(name, t)
        return sources + [first_baselines[name] for name, _ in self.plan.baselines if name in first_baselines]

    def replicates_left(self, trials: list, sources: list | None = None) -> list[tuple[Any, int, int]]:
        """(config's first trial, k, look 1) of every replicate the first round still needs, in
        order: the candidates by rank, then the baselines (``sources``: `_sources` of ``trials``,
        when the caller has them); k = 1 .. confirm.seeds."""
        if not self.plan.confirms:
            return []
        taken = {(t.user_attrs[rec.REPLICATE_OF], t.user_attrs.get(rec.REPLICATE_K)) for t in trials
                 if is_replicate(t) and not is_orphaned(t)}
        sources = self._sources(trials) if sources is None else sources
        return [(src, k, 1) for src in sources for k in range(1, self.plan.confirm_seeds + 1) if (src.number, k) not in taken]

    def later_replicates(self, trials: list, sources: list, waiting: bool = False) -> list[tuple[Any, int, int]] | None:
        """(config's first trial, k, look) of the replicates of the look under way, or of the next
        one (`sweeps.search.allocation.next_replicates` over the finished replicates, within
        ``replicate_budget``); [] when the plan is done; None while ``waiting`` for replicates
        still running before the next look can be planned (``sources``: `_sources` of ``trials``).
        A look's plan is recorded with the study when it is made (`LOOK_PLANS`), so a resumed sweep
        asks only what it lacks."""
        from sweeps.search.allocation import next_replicates
        from sweeps.search.evidence import config_name, design, noise_max, replicates

        plan = self.plan
        if plan.looks <= 1 or plan.replicate_budget <= 0:
            return []
        asked = [t for t in trials if is_replicate(t) and not is_orphaned(t)]
        look = max((int(t.user_attrs.get(rec.LOOK, 1)) for t in asked), default=1)
        d = design(dict(plan.margins), [name for name, _ in plan.baselines], plan.looks, noise_max(trials))
        if d is None:
            return []
        by_name = {config_name(t): t for t in sources}
        candidates = [name for name, t in by_name.items() if is_searched(t)]

        def planned(upto: int) -> list[tuple[str, int]]:
            before = [t for t in trials if int(t.user_attrs.get(rec.LOOK, 1)) <= upto]
            spent = sum(int(t.user_attrs.get(rec.LOOK, 1)) <= upto for t in asked)
            p = next_replicates(d, replicates(before), plan.replicate_budget - spent, candidates)
            return [] if p.done or p.look != upto + 1 else [(c, k) for c, k in p.seeds if c in by_name]

        recorded = self.study.user_attrs.get(rec.LOOK_PLANS) or {}
        if look >= 2:  # the look under way: what its plan, as recorded when it was made, still lacks
            taken = {(config_name(t), int(t.user_attrs.get(rec.REPLICATE_K, 0))) for t in asked
                     if int(t.user_attrs.get(rec.LOOK, 1)) == look}
            seeds = recorded.get(str(look)) if isinstance(recorded, dict) else None
            ok = isinstance(seeds, list) and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str)
                                                 and isinstance(x[1], int) for x in seeds)
            wanted = [(c, k) for c, k in seeds] if ok else planned(look - 1)  # a damaged record: planned again
            todo = [(by_name[c], k, look) for c, k in wanted if (c, k) not in taken and c in by_name]
            if todo:
                return todo
        if look >= plan.looks:
            return []
        if waiting:
            return None
        new = planned(look)
        if new:  # recorded before any of it is asked: a budget raised later does not change a look under way
            kept = recorded if isinstance(recorded, dict) else {}
            self.study.set_user_attr(rec.LOOK_PLANS, {**kept, str(look + 1): [[c, k] for c, k in new]})
        return [(by_name[c], k, look + 1) for c, k in new]

    def ask_replicate(self, source: Any, k: int, look: int = 1) -> Proposal:
        """Trial ``source``'s config again, with model seed ``plan.replicate_seed(k)``, for ``look``."""
        config = dict(source.user_attrs.get(rec.CONFIG) or source.params)
        baseline = config.pop(rec.BASELINE, None)
        config.pop(rec.REPLICATE_OF, None)
        config.pop("seed", None)
        trial = self.study.ask()
        proposal = Proposal(trial.number, config, baseline, replicate_of=source.number, seed=self.plan.replicate_seed(k))
        if baseline:
            trial.set_user_attr(rec.BASELINE, baseline)
        trial.set_user_attr(rec.REPLICATE_OF, source.number)
        trial.set_user_attr(rec.REPLICATE_K, k)
        trial.set_user_attr(rec.LOOK, look)
        trial.set_user_attr(rec.MODEL_SEED, proposal.seed)
        trial.set_user_attr(rec.CONFIG, proposal.config())
        self._asked[trial.number] = trial
        return proposal

    def set_user_attr(self, number: int, key: str, value: Any) -> None:
        self._trial(number).set_user_attr(key, value)

    def _trial(self, number: int):
        if number in self._asked:
            return self._asked[number]
        from sweeps.search.optuna_private import trial_handle

        return trial_handle(self.study, number)

    def is_finished(self, number: int) -> bool:
        from sweeps.search.optuna_private import trial_state

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
            trial.set_user_attr(rec.STOPPED_AT_EPOCH, report.epoch)
            if report.val_accuracy is not None:
                trial.set_user_attr(rec.EARLY_VAL_ACCURACY, report.val_accuracy)
            if report.val_noise_score is not None:
                trial.set_user_attr(rec.EARLY_VAL_NOISE_SCORE, report.val_noise_score)
            self._tell(number, None, TrialState.PRUNED)
        elif report.objectives is None or not all(math.isfinite(v) for v in report.objectives):
            self._tell(number, None, TrialState.FAIL, f"non-finite objectives {report.objectives}")
        else:
            for key in rec.REPORTED:
                value = getattr(report, key)
                if value is not None:
                    trial.set_user_attr(key, value)
            self._tell(number, list(report.objectives), TrialState.COMPLETE)

    def _tell(self, number: int, values: list[float] | None, state, fail_reason: str | None = None) -> None:
        if fail_reason:
            self._trial(number).set_user_attr(rec.FAIL_REASON, fail_reason)
        try:
            self.study.tell(number, values, state=state)
        except Exception as e:  # finished elsewhere meanwhile (reconciled): keep the first record
            log.warning("optuna trial %s: %s", number, e)
        self._asked.pop(number, None)

    def reconcile(self) -> list[int]:
        """Mark trials still RUNNING (or WAITING) as FAIL "orphaned"; returns their numbers. Call it
        only when no trial of the sweep is running (Ray has finished)."""
        from optuna.trial import TrialState

        from sweeps.search.optuna_private import fail_trial

        orphans = []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
            self._trial(t.number).set_user_attr(rec.FAIL_REASON, f"{ORPHANED}: the driver stopped before it was recorded")
            fail_trial(self.study, t.number)
            self._asked.pop(t.number, None)
            orphans.append(t.number)
        return orphans
