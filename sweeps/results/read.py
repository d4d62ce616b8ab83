"""Reading a sweep: one `SweepReader` per command, over its saved spec and its Optuna study.

Everything here reads the saved spec (`sweeps.spec_store`) and the Optuna study only, so
``sweeps status``, ``list``, ``best``, ``export`` and ``report`` work while a sweep runs and import
neither Ray, MLflow nor torch. The record's vocabulary (attribute keys, `ConfigSummary`, the front)
is `sweeps.search.record`'s; this module reads it.

A command opens one reader (`SweepReader.open`): the spec's stores are resolved once, the trials
read once with the attributes the command needs (`CONFIG_ATTRS` at least, so every command groups
seeds into configs and pairs them the same way), and the configs, the front and the chosen config
are computed once from them and shared: `status`, `best`, `export`, `report` and the run summary
(`SweepReader.of`, over the trials the service holds) all read through it.

Trials are read by `sweep_trials`: straight from Optuna's tables (`sweeps.stores.optuna_tables.read_trials`,
no Optuna, SQLAlchemy ORM or alembic import), and only what a command shows. A store at a schema
revision that reader does not know is read through Optuna's public API instead.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sweeps.errors import NoFinishedTrialsError, StoreError
from sweeps.search.record import (BASELINE, CHOSEN_ATTRS, CONFIG_ATTRS, IMPORTANCES, OBJECTIVES, ROW_ATTRS, TEST_ACCURACY,
                                  TEST_NOISE_SCORE, VAL_CURVE, ConfigSummary, config_front, config_of,
                                  config_summaries, hypervolume_curve, is_complete, is_replicate, trial_row)
from sweeps.spec import SweepSpec
from sweeps.spec_store import list_sweeps, saved_spec, spec_path

if TYPE_CHECKING:
    import optuna

    from sweeps.results.best import SweepClaims

__all__ = [
    "SweepReader",
    "Choice",
    "sweep_trials",
    "sweep_status",
    "sweep_counts",
    "report_input",
    "report_html",
    "plain_trials",
    # the record's and the saved specs' names, read here by earlier callers
    "ConfigSummary",
    "config_summaries",
    "config_front",
    "trial_row",
    "hypervolume_curve",
    "ROW_ATTRS",
    "CONFIG_ATTRS",
    "spec_path",
    "saved_spec",
    "list_sweeps",
]

log = logging.getLogger(__name__)


def sweep_trials(spec: SweepSpec, attrs: Iterable[str] | None = None, numbers: Iterable[int] | None = None,
                 params: bool = True) -> list[Any] | None:
    """The sweep's trials in Optuna's order, None if its storage has no study. ``attrs``: the user
    attributes needed (None: all); ``numbers``: only these trials; ``params=False``: no params.
    Trials read through Optuna (the fallback) carry everything whatever was asked. Give a spec
    whose stores are resolved (`SweepSpec.resolved`) where it is read more than once."""
    from sweeps.stores.optuna_tables import UnknownOptunaSchema, read_trials

    url = spec.stores.resolved().optuna_storage
    try:
        return _checked(read_trials(url, spec.name, attrs=attrs, numbers=numbers, params=params), spec.name)
    except UnknownOptunaSchema as e:
        log.debug("reading %s through Optuna: %s", spec.name, e)
    except Exception as e:
        if not type(e).__module__.startswith("sqlalchemy"):
            raise
        from sweeps.stores.preflight import store_problem

        problem = store_problem("optuna_storage", url)  # the database does not answer: say why, as `run` does
        if problem is None:
            raise
        raise StoreError(problem) from None
    from sweeps.search.study import load_study, quiet_optuna

    quiet_optuna()
    study: "optuna.Study | None" = load_study(spec.name, url)
    if study is None:
        return None
    trials = study.get_trials(deepcopy=False)
    if numbers is not None:
        wanted = set(numbers)
        trials = [t for t in trials if t.number in wanted]
    return _checked(trials, spec.name)


# The user attributes this service writes and reads back, with the JSON types they hold: anything
# else in a store was planted or damaged, and is refused in one line before a command uses it.
_NUMBER = (int, float)
ATTR_TYPES: dict[str, tuple[type, ...]] = {
    "config": (dict,), "baseline": (str,), "fail_reason": (str,), "ray_trial_id": (str,),
    "replicate_of": (int,), "replicate_k": (int,), "look": (int,), "model_seed": (int,), "test_accuracy": _NUMBER,
    "test_noise_score": _NUMBER, "noise_max": _NUMBER, "val_curve": (dict,), "stopped_at_epoch": (int,),
    "early_val_accuracy": _NUMBER,
}


def _checked(trials: list[Any] | None, name: str) -> list[Any] | None:
    """``trials`` once each known user attribute holds its type (`ATTR_TYPES`), else `StoreError`."""
    for t in trials or ():
        for key, types in ATTR_TYPES.items():
            value = t.user_attrs.get(key)
            if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
                raise StoreError(f"sweep {name!r}: trial #{t.number}'s {key} holds a {type(value).__name__}, not a "
                                 f"{' or '.join(x.__name__ for x in types)}; its Optuna store was damaged or written "
                                 f"by something else: restore it from a copy")
        curve = t.user_attrs.get("val_curve")
        if curve is not None and not (isinstance(curve.get("levels"), list) and isinstance(curve.get("accuracies"), list)):
            raise StoreError(f"sweep {name!r}: trial #{t.number}'s val_curve lacks its levels or accuracies; its "
                             f"Optuna store was damaged or written by something else: restore it from a copy")
    return trials


@dataclass(frozen=True)
class Choice:
    """The config a rule chose (`sweeps.results.best.choose`) with its first trial read in full
    (`CHOSEN_ATTRS`), the rule as written in its YAML, and the sweep's configs it is compared with."""

    config: ConfigSummary
    rule: str
    configs: tuple[ConfigSummary, ...]

    @property
    def number(self) -> int:
        return self.config.number


class SweepReader:
    """One sweep, read once for one command (see the module's docstring). ``attrs``: the user
    attributes the command needs besides `CONFIG_ATTRS` (None: all)."""

    def __init__(self, spec: SweepSpec, trials: Sequence[Any] | None = None, attrs: Iterable[str] | None = ()) -> None:
        self.spec = spec  # resolved by `open`, or the service's own (resolved when its command began)
        self._attrs = None if attrs is None else tuple(dict.fromkeys((*CONFIG_ATTRS, *attrs)))
        if trials is not None:
            self.__dict__["trials"] = list(trials)

    @classmethod
    def open(cls, name: str, root: str | None = None, attrs: Iterable[str] | None = ()) -> "SweepReader":
        """The saved sweep ``name`` under ``root``; nothing of the study is read until asked."""
        return cls(saved_spec(name, root).resolved(), attrs=attrs)  # the stores, resolved once for the command

    @classmethod
    def of(cls, spec: SweepSpec, trials: Sequence[Any]) -> "SweepReader":
        """A reader over trials already in hand (the service's, at the end of a run): nothing is read."""
        return cls(spec, trials=trials)

    @cached_property
    def trials(self) -> list[Any]:
        """Every trial in Optuna's order (none if the storage has no study yet), read once."""
        return sweep_trials(self.spec, attrs=self._attrs) or []

    @cached_property
    def configs(self) -> list[ConfigSummary]:
        return config_summaries(self.trials)

    @cached_property
    def front(self) -> list[ConfigSummary]:
        """The Pareto front on the configs' means (`sweeps.search.record.config_front`)."""
        return config_front(self.configs)

    @cached_property
    def importances(self) -> dict[str, dict[str, float]] | None:
        """Parameter importances per objective as the sweep stored them when it ended (None before)."""
        from sweeps.stores.optuna_tables import read_study_attr

        value = read_study_attr(self.spec.stores.resolved().optuna_storage, self.spec.name, IMPORTANCES)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
                isinstance(d, dict) and all(isinstance(v, (int, float)) for v in d.values()) for d in value.values()):
            raise StoreError(f"sweep {self.spec.name}: its stored importances are not numbers per parameter per "
                             f"objective; the store was damaged or written by something else")
        return {str(k): {str(p): float(v) for p, v in d.items()} for k, d in value.items()}

    @cached_property
    def counts(self) -> dict[str, int]:
        """Trials by state: COMPLETE, RUNNING, PRUNED and FAIL."""
        states = [getattr(t.state, "name", str(t.state)) for t in self.trials]
        return {s: states.count(s) for s in ("COMPLETE", "RUNNING", "PRUNED", "FAIL")}

    def choose(self, min_accuracy: float | None = None, rule: str = "knee") -> Choice:
        """The config ``rule`` (or ``min_accuracy``) picks from the front, its first trial read in
        full: what `best` and `export` both hand on."""
        from sweeps.results.best import choose

        picked = choose(self.front, min_accuracy=min_accuracy, rule=rule)
        trial = picked.trial
        if self._attrs is not None:  # read with some attributes only: the chosen one again, in full
            full = sweep_trials(self.spec, attrs=CHOSEN_ATTRS, numbers=[picked.number])
            trial = full[0] if full else trial
        config = dataclasses.replace(picked, trial=trial)
        configs = tuple(config if c.number == config.number else c for c in self.configs)
        written = f"min_accuracy={min_accuracy}" if min_accuracy is not None else rule
        return Choice(config, written, configs)

    @cached_property
    def knee_config(self) -> ConfigSummary | None:
        """The front's knee (`sweeps.results.best.choose`'s default rule), None with no front."""
        from sweeps.results.best import choose

        try:
            return choose(self.front)
        except NoFinishedTrialsError:
            return None

    @property
    def knee(self) -> int | None:
        """The knee's number, None with no front."""
        return None if self.knee_config is None else self.knee_config.number

    @cached_property
    def claims(self) -> "SweepClaims | None":
        """What the sweep claims of its knee against its baselines (`sweeps.results.best.sweep_claims`);
        None with no front."""
        from sweeps.results.best import sweep_claims

        return None if self.knee_config is None else sweep_claims(self.spec, self.knee_config, self.configs)


def sweep_status(name: str, root: str | None = None,
                 attrs: Iterable[str] | None = None) -> tuple[SweepSpec, list[Any], list[ConfigSummary]]:
    """(spec, all trials, Pareto front of `ConfigSummary`s), read from Optuna's store alone: works
    while a sweep runs. ``attrs``: the user attributes needed besides `CONFIG_ATTRS` (None: all)."""
    reader = SweepReader.open(name, root, attrs=attrs)
    return reader.spec, reader.trials, reader.front


def sweep_counts(spec: SweepSpec) -> tuple[int, int]:
    """(complete trials, Pareto front size) of a sweep: states, values and `CONFIG_ATTRS` only are read."""
    trials = sweep_trials(spec, attrs=CONFIG_ATTRS, params=False) or []
    done = [t for t in trials if is_complete(t)]
    return len(done), len(config_front(config_summaries(done)))


def plain_trials(trials: Sequence[Any]) -> tuple[Any, ...]:
    """The trials as the report draws them (`dashboards.plotdata.TrialData`): plain values, read
    from the record here so that dashboards knows no attribute key."""
    from dashboards.plotdata import TrialData

    return tuple(
        TrialData(number=t.number, state=getattr(t.state, "name", str(t.state)),
                  values=tuple(t.values) if t.values else None, params=dict(config_of(t)),
                  distributions=dict(getattr(t, "distributions", None) or {}), searched=dict(t.params or {}),
                  baseline=t.user_attrs.get(BASELINE) or "", replicate=is_replicate(t),
                  val_curve=t.user_attrs.get(VAL_CURVE), test_accuracy=t.user_attrs.get(TEST_ACCURACY),
                  test_noise_score=t.user_attrs.get(TEST_NOISE_SCORE))
        for t in trials)


def report_html(reader: SweepReader, figures: list[tuple[str, Any]] | None = None, expected: Any = None) -> str:
    """The sweep's HTML report (`dashboards.report`), fed with what the reader holds (``expected``:
    as `report_input`)."""
    from dashboards.report import sweep_report

    return sweep_report(report_input(reader, expected), plain_trials(reader.trials), figures)


def config_estimate(c: ConfigSummary):
    """A config as the report draws it (`dashboards.plotdata.ConfigEstimate`): its estimates, and
    its validation noise curve's per-level estimate over the same seeds as its figures."""
    from dashboards.plotdata import ConfigEstimate

    from sweeps.search.confirm import estimate

    est = c.estimates()
    seeds = c.seed_trials()
    curves = [t.user_attrs.get(VAL_CURVE) for t in seeds]
    levels: tuple[float, ...] = ()
    band: tuple[tuple[float, float, float], ...] = ()
    if len(curves) > 1 and all(curves) and len({tuple(cv["levels"]) for cv in curves}) == 1:
        levels = tuple(float(v) for v in curves[0]["levels"])
        per_level = [estimate([cv["accuracies"][i] for cv in curves]) for i in range(len(levels))]
        band = tuple((e.mean, e.low, e.high) for e in per_level)
    a, n = est["val_accuracy"], est["val_noise_score"]
    return ConfigEstimate(c.number, len(c.accuracy), (a.mean, a.low, a.high), (n.mean, n.low, n.high),
                          tuple(t.number for t in seeds), levels, band)


def report_input(reader: SweepReader, expected: Any = None):
    """What `dashboards.report` draws a sweep with: names, facts, the chosen trial, the front and
    the hypervolume curve, all as plain data. ``expected``: random search's expected curve where
    the replay benchmark covers the sweep's set-up (`sweeps.replay.reference.random_reference`,
    which the caller looks up: the replay simulator sits above this room), drawn as a band."""
    from dashboards.plotdata import HypervolumeData
    from dashboards.report import ReportInput

    spec, trials, configs = reader.spec, reader.trials, reader.configs
    counts = reader.counts
    chosen = reader.knee
    noise = spec.noise.kind_for(spec.dataset.name)
    reference = expected.reference_point if expected else (0.0, 0.0)
    x, hv = hypervolume_curve(trials, reference)
    band = () if expected is None else (expected.trials, expected.median, expected.q1, expected.q3,
                                        f"random search, expected ({expected.seeds} replayed sweeps)")
    hypervolume = HypervolumeData(reference, tuple(x), tuple(hv), *band)
    return ReportInput(
        name=spec.name,
        noise_kind=noise,
        chosen=chosen,
        objectives=tuple(OBJECTIVES),
        front=frozenset(c.number for c in reader.front),
        hypervolume=hypervolume,
        configs=tuple(config_estimate(c) for c in configs) if any(c.confirmed for c in configs) else (),
        importances=reader.importances,
        claims=() if reader.claims is None else reader.claims.lines,
        summary={
            "dataset": spec.dataset.name,
            "base network": spec.network.name,
            "objectives": "validation accuracy and validation noise score (both maximized)",
            "noise": noise,
            "trials": f"{counts['COMPLETE']} complete, {counts['FAIL']} failed, "
                      f"{counts['PRUNED']} stopped early, of {spec.total_trials}",
            "searcher": f"{spec.searcher.algorithm} (seed {spec.searcher.seed})",
            "chosen config (knee)": "none yet" if chosen is None else f"trial #{chosen}",
        },
    )
