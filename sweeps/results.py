"""Reading a sweep's results: its saved spec, its trials and Pareto front, and its report.

Everything here reads the saved spec (ROOT/specs/NAME.yaml) and the Optuna study only, so
``sweeps status``, ``list``, ``best`` and ``report`` work while a sweep runs and import neither
Ray, MLflow nor torch. `sweeps.service` (which launches sweeps) re-exports these names.

Trials are read by `sweep_trials`: straight from Optuna's tables (`sweeps.internals.read_trials`,
no Optuna, SQLAlchemy ORM or alembic import), and only what a command shows: `list` reads states
and values, `status` the attributes of its rows, `best` the chosen trial's in full. A store at a
schema revision that reader does not know is read through Optuna's public API instead.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import SpecError
from .service_paths import ROOT_ENV, default_root
from .spec import OBJECTIVES, SweepSpec, load_spec

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

__all__ = [
    "spec_path",
    "saved_spec",
    "list_sweeps",
    "front_of",
    "pareto_front",
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
    return Path(root).expanduser() / "specs" / f"{name}.yaml"


def saved_spec(name: str, root: str | None = None) -> SweepSpec:
    """The spec a sweep was launched with (its stores included)."""
    root = root or default_root()
    path = spec_path(root, name)
    if not path.exists():
        known = list_sweeps(root)
        raise SpecError(f"no sweep named {name!r} under {Path(root).resolve()}; known sweeps: {known or 'none'} "
                        f"(use --root or ${ROOT_ENV} for another folder)")
    return load_spec(path)


def list_sweeps(root: str | None = None) -> list[str]:
    folder = Path(root or default_root()).expanduser() / "specs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []


def _load_study(spec: SweepSpec) -> "optuna.Study | None":
    """The sweep's study, None if its storage has none."""
    from .study import load_study

    return load_study(spec.name, spec.stores.resolved().optuna_storage)


def sweep_trials(spec: SweepSpec, attrs: Iterable[str] | None = None, numbers: Iterable[int] | None = None,
                 params: bool = True) -> list[Any] | None:
    """The sweep's trials in Optuna's order, None if its storage has no study. ``attrs``: the user
    attributes needed (None: all); ``numbers``: only these trials; ``params=False``: no params.
    Trials read through Optuna (the fallback) carry everything whatever was asked."""
    from .internals import UnknownOptunaSchema, read_trials

    try:
        return read_trials(spec.stores.resolved().optuna_storage, spec.name, attrs=attrs, numbers=numbers,
                           params=params)
    except UnknownOptunaSchema as e:
        log.debug("reading %s through Optuna: %s", spec.name, e)
    from .console import quiet_optuna

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
    from .pareto import front_flags

    done = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE" and t.values]
    done.sort(key=lambda t: (-t.values[0], -t.values[1]))
    return [t for t, on in zip(done, front_flags([tuple(t.values[:2]) for t in done])) if on]


def pareto_front(study: "optuna.Study") -> list["FrozenTrial"]:
    return front_of(study.get_trials(deepcopy=False))


# The user attributes `trial_row` shows: what `sweeps status` reads of each trial.
ROW_ATTRS = ("baseline", "test_accuracy", "test_noise_score", "config", "fail_reason", "ray_trial_id")


def trial_row(t: "FrozenTrial") -> dict[str, Any]:
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
    }


def sweep_status(name: str, root: str | None = None,
                 attrs: Iterable[str] | None = None) -> tuple[SweepSpec, list["FrozenTrial"], list["FrozenTrial"]]:
    """(spec, all trials, Pareto front), read from Optuna's store alone: works while a sweep runs.
    ``attrs``: the user attributes needed (default all; `ROW_ATTRS` for rows, () for values only)."""
    spec = saved_spec(name, root)
    trials = sweep_trials(spec, attrs=attrs)  # read once
    if trials is None:
        return spec, [], []
    return spec, trials, front_of(trials)


def sweep_counts(spec: SweepSpec) -> tuple[int, int]:
    """(complete trials, Pareto front size) of a sweep: states and values only are read."""
    trials = sweep_trials(spec, attrs=(), params=False) or []
    done = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE"]
    return len(done), len(front_of(done))


def chosen_trial(trials: Sequence[Any]) -> int | None:
    """The number of the front's knee (`sweeps.best.choose`'s default rule), None with no front."""
    from .best import NoFinishedTrialsError, choose

    try:
        return choose(front_of(trials)).number
    except NoFinishedTrialsError:
        return None


def report_html(spec: SweepSpec, trials: Sequence[Any], figures: list[tuple[str, Any]] | None = None) -> str:
    """The sweep's HTML report (`dashboards.report`), fed with what the spec and the study say."""
    from dashboards.report import sweep_report

    return sweep_report(report_input(spec, trials), trials, figures)


def hypervolume_curve(trials: Sequence[Any], reference: tuple[float, float] = (0.0, 0.0)) -> tuple[list[int], list[float]]:
    """(trials ended, hypervolume of the COMPLETE trials by then) after each trial that ended
    (COMPLETE or stopped early), in the order they ended; objectives scaled to [0, 1] (the noise
    score by its maximum, the ``noise_max`` user attribute), as the replay benchmark measures it."""
    from .pareto import anytime_hypervolume

    ended = sorted((t for t in trials if getattr(t.state, "name", "") in ("COMPLETE", "PRUNED")
                    and t.datetime_complete is not None), key=lambda t: (t.datetime_complete, t.number))
    points = []
    for t in ended:
        if getattr(t.state, "name", "") == "COMPLETE" and t.values:
            noise_max = float(t.user_attrs.get("noise_max") or 0)
            points.append((t.values[0], t.values[1] / noise_max if noise_max > 0 else 0.0))
        else:
            points.append((-math.inf, -math.inf))  # a stopped trial adds nothing
    return list(range(1, len(ended) + 1)), anytime_hypervolume(points, reference).tolist()


def report_input(spec: SweepSpec, trials: Sequence[Any]):
    """What `dashboards.report` draws a sweep with: names, facts, the chosen trial, the front and
    the hypervolume curve (with random search's expected one where the replay benchmark covers the
    sweep's set-up), all as plain data."""
    from dashboards.plotdata import HypervolumeData
    from dashboards.report import ReportInput

    from .replay.reference import random_reference

    states = [getattr(t.state, "name", str(t.state)) for t in trials]
    chosen = chosen_trial(trials)
    noise = spec.noise.kind_for(spec.dataset.name)
    expected = random_reference(spec)
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
        front=frozenset(t.number for t in front_of(trials)),
        hypervolume=hypervolume,
        summary={
            "dataset": spec.dataset.name,
            "base network": spec.network.name,
            "objectives": "validation accuracy and validation noise score (both maximized)",
            "noise": noise,
            "trials": f"{states.count('COMPLETE')} complete, {states.count('FAIL')} failed, "
                      f"{states.count('PRUNED')} stopped early, of {spec.num_samples}",
            "searcher": f"{spec.searcher.algorithm} (seed {spec.searcher.seed})",
            "chosen config (knee)": "none yet" if chosen is None else f"trial #{chosen}",
        },
    )
