"""Reading a sweep's results: its saved spec, its trials and Pareto front, and its report.

Everything here reads the saved spec (ROOT/specs/NAME.yaml) and the Optuna study only, so
``sweeps status``, ``list``, ``best`` and ``report`` work while a sweep runs and import neither
Ray, MLflow nor torch. `sweeps.run.service` (which launches sweeps) re-exports these names.

Trials are read by `sweep_trials`: straight from Optuna's tables (`sweeps.search.optuna_private.read_trials`,
no Optuna, SQLAlchemy ORM or alembic import), and only what a command shows: `list` reads states
and values, `status` the attributes of its rows, `best` the chosen trial's in full. A store at a
schema revision that reader does not know is read through Optuna's public API instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sweeps.errors import StoreError, UnknownSweepError
from sweeps.stores.paths import ROOT_ENV, default_root
from sweeps.spec import OBJECTIVES, SweepSpec, load_spec

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = [
    "spec_path",
    "saved_spec",
    "list_sweeps",
    "front_of",
    "pareto_front",
    "ConfigSummary",
    "config_summaries",
    "config_front",
    "trial_row",
    "ROW_ATTRS",
    "sweep_trials",
    "sweep_status",
    "sweep_counts",
    "chosen_trial",
    "hypervolume_curve",
    "report_input",
    "report_html",
]


log = logging.getLogger(__name__)


def spec_path(root: str | Path, name: str) -> Path:
    from sweeps.names import check_sweep_name

    return Path(root).expanduser() / "specs" / f"{check_sweep_name(name, 'sweep name')}.yaml"


def saved_spec(name: str, root: str | None = None) -> SweepSpec:
    """The spec a sweep was launched with (its stores included); a ``root`` given (--root) is its
    stores' root (`sweeps.stores.paths.choose_root`: the command line wins)."""
    given, root = root, root or default_root()
    path = spec_path(root, name)
    if not path.exists():
        known = list_sweeps(root)
        raise UnknownSweepError(f"no sweep named {name!r} under {Path(root).resolve()}; known sweeps: {known or 'none'} "
                        f"(use --root or ${ROOT_ENV} for another folder)")
    return load_spec(path, stores_root=given)


def list_sweeps(root: str | None = None) -> list[str]:
    folder = Path(root or default_root()).expanduser() / "specs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []


def _load_study(spec: SweepSpec) -> "optuna.Study | None":
    """The sweep's study, None if its storage has none."""
    from sweeps.search.study import load_study

    return load_study(spec.name, spec.stores.resolved().optuna_storage)


def sweep_trials(spec: SweepSpec, attrs: Iterable[str] | None = None, numbers: Iterable[int] | None = None,
                 params: bool = True) -> list[Any] | None:
    """The sweep's trials in Optuna's order, None if its storage has no study. ``attrs``: the user
    attributes needed (None: all); ``numbers``: only these trials; ``params=False``: no params.
    Trials read through Optuna (the fallback) carry everything whatever was asked."""
    from sweeps.stores.optuna_tables import UnknownOptunaSchema, read_trials

    url = spec.stores.resolved().optuna_storage
    try:
        return read_trials(url, spec.name, attrs=attrs, numbers=numbers, params=params)
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
    from sweeps.search.study import quiet_optuna

    quiet_optuna()
    study = _load_study(spec)
    if study is None:
        return None
    trials = study.get_trials(deepcopy=False)
    if numbers is not None:
        wanted = set(numbers)
        trials = [t for t in trials if t.number in wanted]
    return trials


def front_of(trials: Sequence[Any]) -> list[Any]:
    """The COMPLETE trials no other COMPLETE trial dominates (both objectives maximized; equal points
    all stay, as in Optuna's ``best_trials``), by decreasing validation accuracy."""
    from sweeps.search.pareto import front_flags

    done = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE" and t.values]
    done.sort(key=lambda t: (-t.values[0], -t.values[1]))
    return [t for t, on in zip(done, front_flags([tuple(t.values[:2]) for t in done])) if on]


def pareto_front(study: "optuna.Study") -> list[Any]:
    """The sweep's front: on the means of confirmed configs once it has replicates, else the
    single-seed front (`config_front`)."""
    return config_front(config_summaries(study.get_trials(deepcopy=False)))


def _complete(t: Any) -> bool:
    return getattr(t.state, "name", "") == "COMPLETE" and bool(t.values)


@dataclass(frozen=True)
class ConfigSummary:
    """One config of a sweep over its seeds: its first trial (``trial``, ``number``), the values
    its figures rest on (`sweeps.search.confirm.confirmation_values`: a searched config's replicates
    only, once it has them) and their estimates. ``values`` holds the two means, so the front and
    `sweeps.results.best.choose` take a summary wherever they take a trial."""

    trial: Any
    baseline: str | None
    replicates: tuple[Any, ...]  # its COMPLETE replicate trials
    accuracy: tuple[float, ...]
    noise: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    test_noise: tuple[float, ...]
    # The model seed of each of ``accuracy`` and ``noise``: a replicate's ``model_seed``, FIRST for
    # a first trial (every config's first trial trains with the spec's seed). Pairs `compare`.
    seeds: tuple[object, ...] = ()

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def state(self) -> Any:
        return self.trial.state

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self.trial.user_attrs

    @property
    def params(self) -> dict[str, Any]:
        return self.trial.params

    @property
    def confirmed(self) -> bool:
        return bool(self.replicates)

    @property
    def values(self) -> list[float]:
        return [sum(self.accuracy) / len(self.accuracy), sum(self.noise) / len(self.noise)]

    def estimates(self) -> dict[str, Any]:
        """`sweeps.search.confirm.Estimate` of each objective (and of the test figures where known)."""
        from sweeps.search.confirm import estimate

        out = {"val_accuracy": estimate(self.accuracy), "val_noise_score": estimate(self.noise)}
        if self.test_accuracy:
            out["test_accuracy"] = estimate(self.test_accuracy)
        if self.test_noise:
            out["test_noise_score"] = estimate(self.test_noise)
        return out


FIRST = "first"  # the model seed of a config's first trial (the spec's seed), in `ConfigSummary.seeds`


def config_summaries(trials: Sequence[Any]) -> list[ConfigSummary]:
    """Every config with at least one finished seed, by its first trial's number: searched configs
    and baselines, each with its replicates (`sweeps.search.study`)."""
    from sweeps.search.confirm import confirmation_values
    from sweeps.search.study import is_replicate, is_searched

    reps: dict[int, list[Any]] = {}
    for t in trials:
        if is_replicate(t) and _complete(t):
            reps.setdefault(int(t.user_attrs["replicate_of"]), []).append(t)
    out = []
    for t in trials:
        if is_replicate(t):
            continue
        mine = sorted(reps.get(t.number, []), key=lambda r: r.number)
        first = [t] if _complete(t) else []
        if not first and not mine:
            continue
        selected = is_searched(t)

        def values(get) -> tuple[float, ...]:
            firsts = [v for v in map(get, first) if v is not None]
            again = [v for v in map(get, mine) if v is not None]
            return tuple(float(v) for v in confirmation_values(firsts, again, selected))

        counted = confirmation_values(first, mine, selected)  # the trials the objectives rest on
        out.append(ConfigSummary(
            trial=t, baseline=t.user_attrs.get("baseline"), replicates=tuple(mine),
            accuracy=tuple(float(x.values[0]) for x in counted), noise=tuple(float(x.values[1]) for x in counted),
            test_accuracy=values(lambda x: x.user_attrs.get("test_accuracy")),
            test_noise=values(lambda x: x.user_attrs.get("test_noise_score")),
            seeds=tuple(x.user_attrs.get("model_seed", FIRST) if is_replicate(x) else FIRST for x in counted),
        ))
    return out


def config_front(configs: Sequence[ConfigSummary]) -> list[ConfigSummary]:
    """The Pareto front on the configs' means: among the confirmed configs once any config has
    replicates (a single lucky seed is not put beside confirmed means), else among all, as Optuna's
    best_trials; by decreasing validation accuracy."""
    from sweeps.search.pareto import front_flags

    pool = [c for c in configs if c.confirmed] or list(configs)
    pool.sort(key=lambda c: (-c.values[0], -c.values[1]))
    return [c for c, on in zip(pool, front_flags([tuple(c.values) for c in pool])) if on]


# The user attributes `trial_row` shows: what `sweeps status` reads of each trial.
ROW_ATTRS = ("baseline", "test_accuracy", "test_noise_score", "config", "fail_reason", "ray_trial_id", "replicate_of",
             "model_seed")
# What `config_summaries` reads: which config a trial repeats, and its test figures.
CONFIG_ATTRS = ("baseline", "replicate_of", "test_accuracy", "test_noise_score")


def trial_row(t: "FrozenTrial | ConfigSummary") -> dict[str, Any]:
    """A trial as a row of plain values; a `ConfigSummary` adds ``seeds`` and, per objective,
    ``estimates`` (mean, 95 % interval, n) and shows the means."""
    row = _trial_row(t)
    if isinstance(t, ConfigSummary):
        est = t.estimates()
        row.update(val_accuracy=t.values[0], val_noise_score=t.values[1], seeds=len(t.accuracy),
                   replicates=len(t.replicates), estimates={k: e.to_dict() for k, e in est.items()})
        if "test_accuracy" in est:
            row["test_accuracy"] = est["test_accuracy"].mean
        if "test_noise_score" in est:
            row["test_noise_score"] = est["test_noise_score"].mean
    return row


def _trial_row(t: Any) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "baseline": t.user_attrs.get("baseline", ""),
        "val_accuracy": t.values[0] if t.values else None,
        "val_noise_score": t.values[1] if t.values else None,
        "test_accuracy": t.user_attrs.get("test_accuracy"),
        "test_noise_score": t.user_attrs.get("test_noise_score"),
        "params": t.user_attrs["config"] if "config" in t.user_attrs else t.params,
        "fail_reason": t.user_attrs.get("fail_reason", ""),
        "ray_trial_id": t.user_attrs.get("ray_trial_id", ""),
        "replicate_of": t.user_attrs.get("replicate_of"),
        "model_seed": t.user_attrs.get("model_seed"),
    }


def sweep_status(name: str, root: str | None = None,
                 attrs: Iterable[str] | None = None) -> tuple[SweepSpec, list["FrozenTrial"], list["FrozenTrial"]]:
    """(spec, all trials, Pareto front of `ConfigSummary`s), read from Optuna's store alone: works
    while a sweep runs.
    ``attrs``: the user attributes needed (default all; `ROW_ATTRS` for rows, () for values only)."""
    spec = saved_spec(name, root)
    if attrs is not None:
        attrs = (*attrs, *CONFIG_ATTRS)  # what grouping seeds into configs reads
    trials = sweep_trials(spec, attrs=attrs)  # read once
    if trials is None:
        return spec, [], []
    return spec, trials, config_front(config_summaries(trials))


def sweep_counts(spec: SweepSpec) -> tuple[int, int]:
    """(complete trials, Pareto front size) of a sweep: states and values only are read."""
    trials = sweep_trials(spec, attrs=CONFIG_ATTRS, params=False) or []
    done = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE"]
    return len(done), len(config_front(config_summaries(done)))


def chosen_trial(trials: Sequence[Any]) -> int | None:
    """The number of the front's knee (`sweeps.results.best.choose`'s default rule), None with no front."""
    from sweeps.results.best import NoFinishedTrialsError, choose

    try:
        return choose(config_front(config_summaries(trials))).number
    except NoFinishedTrialsError:
        return None


def report_html(spec: SweepSpec, trials: Sequence[Any], figures: list[tuple[str, Any]] | None = None,
                expected: Any = None) -> str:
    """The sweep's HTML report (`dashboards.report`), fed with what the spec and the study say
    (``expected``: as `report_input`)."""
    from dashboards.report import sweep_report

    return sweep_report(report_input(spec, trials, expected), trials, figures)


def hypervolume_curve(trials: Sequence[Any], reference: tuple[float, float] = (0.0, 0.0)) -> tuple[list[int], list[float]]:
    """(trials ended, hypervolume of the COMPLETE trials by then) after each trial that ended
    (COMPLETE or stopped early; seed replicates are no new configs and are left out), in the order they ended; objectives scaled to [0, 1] (the noise
    score by its maximum, the ``noise_max`` user attribute), as the replay benchmark measures it."""
    from sweeps.search.pareto import anytime_hypervolume

    ended = sorted((t for t in trials if getattr(t.state, "name", "") in ("COMPLETE", "PRUNED")
                    and t.datetime_complete is not None and "replicate_of" not in t.user_attrs),
                   key=lambda t: (t.datetime_complete, t.number))
    points = []
    for t in ended:
        if getattr(t.state, "name", "") == "COMPLETE" and t.values:
            noise_max = float(t.user_attrs.get("noise_max") or 0)
            points.append((t.values[0], t.values[1] / noise_max if noise_max > 0 else 0.0))
        else:
            points.append((-math.inf, -math.inf))  # a stopped trial adds nothing
    return list(range(1, len(ended) + 1)), anytime_hypervolume(points, reference).tolist()


def config_estimate(c: ConfigSummary):
    """A config as the report draws it (`dashboards.plotdata.ConfigEstimate`): its estimates, and
    its validation noise curve's per-level estimate over the same seeds as its figures."""
    from dashboards.plotdata import ConfigEstimate

    from sweeps.search.confirm import estimate
    from sweeps.search.study import is_searched

    est = c.estimates()
    seeds = list(c.replicates) if (c.replicates and is_searched(c.trial)) else [c.trial, *c.replicates]
    seeds = [t for t in seeds if _complete(t)]
    curves = [t.user_attrs.get("val_curve") for t in seeds]
    levels: tuple[float, ...] = ()
    band: tuple[tuple[float, float, float], ...] = ()
    if len(curves) > 1 and all(curves) and len({tuple(cv["levels"]) for cv in curves}) == 1:
        levels = tuple(float(v) for v in curves[0]["levels"])
        per_level = [estimate([cv["accuracies"][i] for cv in curves]) for i in range(len(levels))]
        band = tuple((e.mean, e.low, e.high) for e in per_level)
    a, n = est["val_accuracy"], est["val_noise_score"]
    return ConfigEstimate(c.number, len(c.accuracy), (a.mean, a.low, a.high), (n.mean, n.low, n.high),
                          tuple(t.number for t in seeds), levels, band)


def report_input(spec: SweepSpec, trials: Sequence[Any], expected: Any = None):
    """What `dashboards.report` draws a sweep with: names, facts, the chosen trial, the front and
    the hypervolume curve, all as plain data. ``expected``: random search's expected curve where
    the replay benchmark covers the sweep's set-up (`sweeps.replay.reference.random_reference`,
    which the caller looks up: the replay simulator sits above this room), drawn as a band."""
    from dashboards.plotdata import HypervolumeData
    from dashboards.report import ReportInput

    states = [getattr(t.state, "name", str(t.state)) for t in trials]
    configs = config_summaries(trials)
    front = config_front(configs)
    chosen = chosen_trial(trials)
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
        front=frozenset(c.number for c in front),
        hypervolume=hypervolume,
        configs=tuple(config_estimate(c) for c in configs) if any(c.confirmed for c in configs) else (),
        summary={
            "dataset": spec.dataset.name,
            "base network": spec.network.name,
            "objectives": "validation accuracy and validation noise score (both maximized)",
            "noise": noise,
            "trials": f"{states.count('COMPLETE')} complete, {states.count('FAIL')} failed, "
                      f"{states.count('PRUNED')} stopped early, of {spec.total_trials}",
            "searcher": f"{spec.searcher.algorithm} (seed {spec.searcher.seed})",
            "chosen config (knee)": "none yet" if chosen is None else f"trial #{chosen}",
        },
    )
