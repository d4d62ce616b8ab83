"""The sweep spec: a YAML file validated into one frozen `SweepSpec` before anything starts.

Every error names the key (``space.percent_on.low``) and the fix. The spec is the only place a
YAML mapping is read; past `SweepSpec.from_dict` everything is typed.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from sparsity.configs import check_known_keys
from sparsity.data.config import DataConfig
from sparsity.experiment_config import ExperimentConfig, NoiseConfig
from sparsity.facts import dataset_facts
from sparsity.network_spec import NetworkSpec
from sparsity.presets import preset as network_preset
from sparsity.recipe import Recipe, paper_recipe

from sweeps.search.early_stopping import RULES as EARLY_STOPPING_RULES, SuccessiveHalving
from sweeps.search.plan import Dimension, StudyPlan
from sweeps.search import claims, space as grammar
from sweeps.errors import SpecError, StoreError, spec_fail
from sweeps.names import check_sweep_name
from sweeps.stores.paths import choose_root
from sweeps.stores.config import STORE_ENV, Stores  # noqa: F401  (the stores' home; re-exported here)
from sweeps.search.samplers import DEFAULT_SAMPLER, SAMPLERS

__all__ = [
    "SpecError",
    "Param",
    "Baseline",
    "Budget",
    "Resources",
    "Searcher",
    "EarlyStopping",
    "Confirm",
    "Stores",
    "SweepSpec",
    "load_spec",
    "spec_preset_names",
    "OBJECTIVES",
]

# Both maximized, on the validation split. The test split is only for reporting.
from sweeps.search.record import BASELINE, OBJECTIVES  # noqa: E402  (the objectives live with the sweep's record)

# A baseline without a preset is the dense point of the same network.
_DENSE_POINT = ((grammar.parse("percent_on"), 1.0), (grammar.parse("weight_density"), 1.0))


def _reject_unknown(where: str, data: Mapping[str, Any], known: set[str]) -> None:
    try:
        check_known_keys(where or "spec", data, known)
    except ValueError as e:
        raise SpecError(str(e)) from None


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        spec_fail(where, f"must be a mapping, got {type(value).__name__}")
    return value


def _typed(cls: type, where: str, data: Any) -> Any:
    """Build a frozen dataclass from a mapping, naming the key of any error."""
    data = _mapping(where, data)
    _reject_unknown(where, data, {f.name for f in dataclasses.fields(cls)})
    try:
        return cls(**data)
    except SpecError:
        raise
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from None


@dataclass(frozen=True)
class Param(Dimension):
    """One searched parameter (`sweeps.search.plan.Dimension`: a float/int range, optionally log
    scale, or a list of choices), validated, with where its value lands in the network."""

    # Where the value lands, parsed once from ``name`` (`sweeps.search.space`).
    target: grammar.Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = f"space.{self.name}"
        try:
            object.__setattr__(self, "target", grammar.parse(self.name))
        except ValueError as e:
            spec_fail(key, str(e))
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
            if self.low is not None or self.high is not None:
                spec_fail(key, "give either choices or low/high, not both")
            if not self.choices:
                spec_fail(f"{key}.choices", "must list at least one value")
            return
        if self.low is None or self.high is None:
            spec_fail(key, "give low and high (a range) or choices (a list)")
        if not (isinstance(self.low, (int, float)) and isinstance(self.high, (int, float))):
            spec_fail(key, f"low and high must be numbers, got {self.low!r} and {self.high!r}")
        if not self.low < self.high:
            spec_fail(f"{key}.low", f"low={self.low} must be below high={self.high}")
        if self.log and self.low <= 0:
            spec_fail(f"{key}.low", f"low={self.low} must be > 0 on a log scale (log: true)")

    def values(self) -> tuple[float, ...]:
        """The extreme values a trial may take (for validating the space against the network)."""
        return tuple(self.choices) if self.choices is not None else (self.low, self.high)


@dataclass(frozen=True)
class Baseline:
    """A fixed config run before the search: by default the dense point of the space
    (percent_on=1, weight_density=1) with the given overrides, or another network preset."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    preset: str | None = None
    # ``params`` with each name parsed once into its target (`sweeps.search.space`).
    values: tuple[tuple[grammar.Target, Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple((grammar.parse(k), v) for k, v in self.params.items()))


AUTO = "auto"  # budget.max_concurrent: fill the cluster


@dataclass(frozen=True)
class Budget:
    trials: int = 8  # searched trials; baselines run on top of these
    epochs: int | None = None  # None: the recipe's
    # Trials at once: a number, or "auto": as many as the Ray it runs on fits, given each trial's
    # resources (its GPUs, else its CPUs; what an autoscaler can add counts), `sweeps.run.ray_start`.
    max_concurrent: int | str = AUTO
    max_failures: int = 1  # retries of a trial that raised, from its last checkpoint

    def __post_init__(self) -> None:
        if not (isinstance(self.trials, int) and self.trials >= 0):
            spec_fail("budget.trials", f"{self.trials!r} must be an integer >= 0")
        if self.epochs is not None and not (isinstance(self.epochs, int) and self.epochs >= 1):
            spec_fail("budget.epochs", f"{self.epochs!r} must be an integer >= 1 (or null for the recipe's)")
        if self.max_concurrent != AUTO and not (isinstance(self.max_concurrent, int)
                                                and not isinstance(self.max_concurrent, bool)
                                                and self.max_concurrent >= 1):
            spec_fail("budget.max_concurrent", f"{self.max_concurrent!r} must be an integer >= 1, or {AUTO} (as many "
                                               f"as the cluster fits)")
        if not (isinstance(self.max_failures, int) and self.max_failures >= 0):
            spec_fail("budget.max_failures", f"{self.max_failures!r} must be an integer >= 0")


    @property
    def is_auto(self) -> bool:
        return self.max_concurrent == AUTO

    def concurrency(self, slots: int) -> int:
        """Trials at once: the fixed number, or with ``auto`` the ``slots`` there are (at least 1)."""
        return max(1, int(slots)) if self.is_auto else int(self.max_concurrent)


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    gpus: float = 0.0  # fractional allowed: 0.25 packs four trials on a GPU

    def __post_init__(self) -> None:
        if not self.cpus > 0:
            spec_fail("resources.cpus", f"{self.cpus!r} must be > 0")
        if not 0 <= self.gpus:
            spec_fail("resources.gpus", f"{self.gpus!r} must be >= 0")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            spec_fail("resources.gpus", f"{self.gpus!r}: above 1 GPU per trial, ask for a whole number")


@dataclass(frozen=True)
class Searcher:
    """Which Optuna sampler proposes configs (`sweeps.search.samplers`), and its seed."""

    algorithm: str = DEFAULT_SAMPLER
    seed: int = 0
    startup_trials: int | None = None  # random proposals before a model-based sampler models; None: by budget

    def __post_init__(self) -> None:
        if self.algorithm not in SAMPLERS:
            spec_fail("searcher.algorithm", f"{self.algorithm!r} is not a searcher; choose one of {', '.join(SAMPLERS)}")
        if self.startup_trials is not None and not (isinstance(self.startup_trials, int) and self.startup_trials >= 1):
            spec_fail("searcher.startup_trials", f"{self.startup_trials!r} must be an integer >= 1 (or null for the default)")


@dataclass(frozen=True)
class EarlyStopping:
    """Asynchronous successive halving (`sweeps.search.early_stopping`): ``rule: accuracy`` stops on one
    per-epoch ``metric`` (ASHA); ``rule: pareto`` on both objectives by non-dominated sorting
    (MO-ASHA). Trials it stops are recorded as PRUNED in Optuna (their objective values are from an
    unfinished run, so they stay off the Pareto front)."""

    metric: str = "val_accuracy"
    grace_period: int = 1
    reduction_factor: float = 3.0  # as SuccessiveHalving's (sweeps.search.early_stopping)
    rule: str = "accuracy"

    def __post_init__(self) -> None:
        if self.rule not in EARLY_STOPPING_RULES:
            spec_fail("early_stopping.rule", f"{self.rule!r}: choose one of {', '.join(EARLY_STOPPING_RULES)} "
                  f"(accuracy: ASHA on early_stopping.metric; pareto: MO-ASHA on both objectives)")
        if self.metric not in ("val_accuracy", "val_loss", "train_loss", "train_accuracy"):
            spec_fail(
                "early_stopping.metric",
                f"{self.metric!r} is not a per-epoch metric; use val_accuracy, val_loss, train_loss or train_accuracy",
            )
        if not isinstance(self.grace_period, int) or self.grace_period < 1:
            spec_fail("early_stopping.grace_period", f"{self.grace_period!r} must be an integer >= 1 epoch")
        if self.reduction_factor <= 1:
            spec_fail("early_stopping.reduction_factor", f"{self.reduction_factor!r} must be > 1")

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"


@dataclass(frozen=True)
class Confirm:
    """Seed replicates after the search (`sweeps.search.confirm`, `sweeps.search.allocation`): first
    the up to ``top`` best searched configs (by non-domination rank, then crowding) and every
    baseline train again with ``seeds`` more model seeds, as real trials (look 1). Then, while
    ``budget`` (replicate trials in all; None: just that first round) allows and at most ``looks``
    looks in all, more seeds go to whichever config's interval holds up the unresolved claims
    (the baselines, shared by every comparison, most often), until each claim is resolved. Claims
    are judged at ``margin`` per objective (`sweeps.search.claims`: accuracy in points, the noise
    score as a share of its maximum; unset objectives take the defaults)."""

    top: int = 4
    seeds: int = 3
    budget: int | None = None
    looks: int = claims.LOOKS
    margin: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.top, int) and not isinstance(self.top, bool) and self.top >= 1):
            spec_fail("confirm.top", f"{self.top!r} must be an integer >= 1 (configs to confirm), or confirm: null for none")
        if not (isinstance(self.seeds, int) and not isinstance(self.seeds, bool) and self.seeds >= 1):
            spec_fail("confirm.seeds", f"{self.seeds!r} must be an integer >= 1 (model seeds added to each config); "
                  f"for no replicates set confirm: null")
        if not (isinstance(self.looks, int) and not isinstance(self.looks, bool) and 1 <= self.looks <= 10):
            spec_fail("confirm.looks", f"{self.looks!r} must be an integer from 1 to 10 (rounds of seeds whose "
                      f"tests share the 5 % error; 2 is the default)")
        object.__setattr__(self, "margin", claims.check_margins(self.margin, OBJECTIVES))

    def first_round(self, baselines: int) -> int:
        """Trials of the first round: (top + baselines) x seeds."""
        return (self.top + baselines) * self.seeds


@dataclass(frozen=True)
class SweepSpec:
    name: str
    dataset: DataConfig
    network: NetworkSpec
    network_preset: str
    recipe: Recipe
    space: tuple[Param, ...]
    baselines: tuple[Baseline, ...] = ()
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    searcher: Searcher = field(default_factory=Searcher)
    early_stopping: EarlyStopping | None = None
    confirm: Confirm | None = None
    stores: Stores = field(default_factory=Stores)
    seed: int = 0

    def __post_init__(self) -> None:
        check_sweep_name(self.name)
        if self.early_stopping is not None and self.epochs < 2:
            spec_fail("early_stopping", f"stops trials between epochs, but trials train {self.epochs} epoch; "
                  f"set recipe.epochs (or budget.epochs) to 2 or more, or early_stopping: null")
        if self.early_stopping is not None and self.early_stopping.grace_period >= self.epochs:
            spec_fail("early_stopping.grace_period", f"{self.early_stopping.grace_period} leaves no epoch to stop at "
                  f"before the last ({self.epochs}); use a grace_period below {self.epochs}")
        if self.confirm is not None:
            if not self.baselines:
                spec_fail("confirm", "replicates are judged against a baseline, but the spec has none; add one "
                      "(baselines: [{name: dense}]) or set confirm: null")
            claims.check_budget(self.confirm.budget, self.confirm.first_round(len(self.baselines)))
            if self.confirm.top > self.budget.trials:
                spec_fail("confirm.top", f"{self.confirm.top} is more than the {self.budget.trials} searched trials "
                      f"(budget.trials); use at most {self.budget.trials}")
        names = [p.name for p in self.space]
        if len(set(names)) != len(names):
            spec_fail("space", f"a parameter appears twice: {names}")
        for p in self.space:
            try:
                p.target.check(self.network)
            except ValueError as e:
                raise SpecError(f"space.{p.name}: {e}") from None
        seen = set()
        for i, b in enumerate(self.baselines):
            if b.name in seen:
                spec_fail(f"baselines[{i}].name", f"{b.name!r} is used twice")
            seen.add(b.name)
            try:
                self.experiment(dict(b.params), baseline=b)
            except ValueError as e:
                raise SpecError(f"baselines[{i}] ({b.name}): {e}") from None
        # The extremes of every range must build a valid network (k >= 1 on every layer, ...).
        for p in self.space:
            for v in p.values():
                try:
                    self.experiment({p.name: v})
                except ValueError as e:
                    raise SpecError(f"space.{p.name}: value {v!r} gives an invalid network: {e}") from None

    # -- trials ------------------------------------------------------------------------------

    @property
    def epochs(self) -> int:
        return self.budget.epochs or self.recipe.epochs

    @property
    def num_samples(self) -> int:
        """Baselines and searched trials: the search, replicates apart."""
        return self.budget.trials + len(self.baselines)

    @property
    def total_trials(self) -> int:
        """Every trial the plan runs: the search, then the replicates (at most: `replicate_trials`)."""
        return self.num_samples + self.replicate_trials

    @property
    def replicate_trials(self) -> int:
        """Replicate trials at most: ``confirm.budget``, else the first round's (top + baselines) x seeds."""
        if self.confirm is None:
            return 0
        return self.confirm.budget or self.confirm.first_round(len(self.baselines))

    def replicate_seed(self, k: int) -> int:
        """The model seed of a config's ``k``-th replicate (1-based): the spec's seed + k."""
        return self.seed + k

    def resolved(self) -> "SweepSpec":
        """This spec with its stores resolved (`Stores.resolved`: absolute root, every URL set),
        resolved once: a spec whose stores are resolved is returned as it is. Nothing else changes,
        so nothing is validated again. A command resolves the spec it was given once, at its start."""
        if self.stores.is_resolved:
            return self
        out = copy.copy(self)
        object.__setattr__(out, "stores", self.stores.resolved())  # the stores take no part in validation
        return out

    def study_plan(self) -> StudyPlan:
        """What the sweep's study needs of this spec (`sweeps.search.study.SweepStudy`)."""
        return StudyPlan(
            name=self.name,
            space=tuple(self.space),  # each Param is a Dimension
            baselines=tuple((b.name, dict(b.params)) for b in self.baselines),
            trials=self.budget.trials, sampler=self.searcher.algorithm, sampler_seed=self.searcher.seed,
            startup_trials=self.searcher.startup_trials,
            confirm_top=None if self.confirm is None else self.confirm.top,
            confirm_seeds=0 if self.confirm is None else self.confirm.seeds,
            seed=self.seed,
            replicate_budget=self.replicate_trials,
            looks=1 if self.confirm is None else self.confirm.looks,
            margins=() if self.confirm is None else tuple(self.confirm.margin.items()),
        )

    def stopping_rule(self) -> SuccessiveHalving | None:
        """A fresh early-stopping rule for this sweep (`sweeps.search.early_stopping`), None without one."""
        es = self.early_stopping
        if es is None:
            return None
        return SuccessiveHalving(max_epochs=self.epochs, grace_period=es.grace_period,
                                 reduction_factor=es.reduction_factor, rule=es.rule, metric=es.metric, mode=es.mode)

    def experiment(self, params: Mapping[str, Any], baseline: Baseline | None = None, seed: int | None = None) -> ExperimentConfig:
        """The experiment one trial runs: the base network and recipe with ``params`` applied."""
        network = network_preset(baseline.preset, self.dataset.name) if baseline and baseline.preset else self.network
        values: list[tuple[grammar.Target, Any]] = []
        if baseline is not None:
            # The dense point of the same space (or the baseline's preset), with the baseline's values.
            values += (_DENSE_POINT if baseline.preset is None else ()) + baseline.values
        targets = {p.name: p.target for p in self.space}  # parsed once, with the spec
        values += [(targets[n] if n in targets else grammar.parse(n), v) for n, v in params.items()]
        recipe = self.recipe.replace(epochs=self.epochs)
        if baseline is not None and baseline.preset:
            recipe = paper_recipe(baseline.preset, self.dataset.name).replace(epochs=self.epochs)
        network, recipe = grammar.apply(network, recipe, values)
        if baseline is not None:
            network = network.replace(name=f"{network.name}@{baseline.name}")
        return ExperimentConfig(
            network=network, recipe=recipe, data=self.dataset, noise=self.noise,
            seed=self.seed if seed is None else seed, evaluate_test=True,
        )

    def trial(self, config: Mapping[str, Any]) -> tuple[ExperimentConfig, dict[str, Any], str | None]:
        """(experiment, searched params, baseline name) of one trial's config as the searcher made
        it: a baseline's name, or a value for every parameter of the space."""
        baseline_name = config.get(BASELINE)
        if baseline_name:
            baseline = next((b for b in self.baselines if b.name == baseline_name), None)
            if baseline is None:  # a store that does not match its saved spec
                raise StoreError(f"sweep {self.name!r}: a trial's config names baseline {str(baseline_name)[:80]!r}, "
                                 f"which its saved spec does not define; the study does not match the spec")
            params = dict(baseline.params)
        else:
            baseline = None
            missing = [p.name for p in self.space if p.name not in config]
            if missing:
                raise StoreError(f"sweep {self.name!r}: a trial's config lacks {', '.join(missing)} of the saved "
                                 f"spec's space; the study does not match the spec")
            params = {p.name: config[p.name] for p in self.space}
        seed = config.get("seed")  # a replicate's model seed; None: the spec's
        return self.experiment(params, baseline=baseline, seed=None if seed is None else int(seed)), params, baseline_name

    # -- YAML -----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], stores_root: str | None = None,
                  environ: Mapping[str, str] | None = None) -> "SweepSpec":
        """The spec of a mapping (a YAML file's), validated: a `SpecError` names the key at fault.
        ``stores_root``: the command line's root, which wins over the mapping's; ``environ``: the
        environment whose $SPARSE_SWEEPS_ROOT applies when neither gives one (this process's when
        None): `sweeps.stores.paths.choose_root`."""
        data = _mapping("spec", data)
        _reject_unknown("", data, {f.name for f in dataclasses.fields(cls)} - {"network_preset", "noise"} | {"objectives"})
        if "name" not in data:
            spec_fail("name", "missing; every sweep needs a name")
        dataset = _dataset_of(data.get("dataset"))
        network, preset_name = _network_of(data.get("network"), dataset.name)
        es, confirm = data.get("early_stopping"), data.get("confirm")
        return cls(
            name=str(data["name"]),
            dataset=dataset,
            network=network,
            network_preset=preset_name,
            recipe=_recipe_of(data.get("recipe"), preset_name, dataset.name),
            space=tuple(_space_of(data.get("space"))),
            baselines=tuple(_baselines_of(data.get("baselines"))),
            noise=_noise_of(data.get("objectives"), dataset.name),
            budget=_typed(Budget, "budget", data.get("budget")),
            resources=_typed(Resources, "resources", data.get("resources")),
            searcher=_typed(Searcher, "searcher", data.get("searcher")),
            early_stopping=None if not es else _typed(EarlyStopping, "early_stopping", es),
            confirm=None if not confirm else _typed(Confirm, "confirm", confirm),
            stores=_stores_of(data.get("stores"), stores_root, environ),
            seed=int(data.get("seed", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """A YAML-ready mapping that `from_dict` reads back to an equal spec."""
        out: dict[str, Any] = {
            "name": self.name,
            "dataset": self.dataset.to_dict(),
            "network": self.network_preset or self.network.to_dict(),
            "recipe": self.recipe.to_dict(),
            "space": {
                p.name: {k: v for k, v in dataclasses.asdict(p).items()
                         if k not in ("name", "target") and v is not None and v is not False}
                for p in self.space
            },
            "baselines": [
                {"name": b.name, "params": dict(b.params), **({"preset": b.preset} if b.preset else {})}
                for b in self.baselines
            ],
            "objectives": {"noise": dataclasses.asdict(self.noise)},
            "budget": dataclasses.asdict(self.budget),
            "resources": dataclasses.asdict(self.resources),
            "searcher": dataclasses.asdict(self.searcher),
            "early_stopping": None if self.early_stopping is None else dataclasses.asdict(self.early_stopping),
            "confirm": None if self.confirm is None else {**dataclasses.asdict(self.confirm), "margin": dict(self.confirm.margin)},
            "stores": dataclasses.asdict(self.stores),
            "seed": self.seed,
        }
        for p in out["space"].values():
            if "choices" in p:
                p["choices"] = list(p["choices"])
        if out["objectives"]["noise"]["levels"] is not None:
            out["objectives"]["noise"]["levels"] = list(out["objectives"]["noise"]["levels"])
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def spec_preset_names() -> list[str]:
    return sorted(p.stem for p in resources.files("sweeps").joinpath("presets").iterdir() if p.name.endswith(".yaml"))


def load_spec(source: str | Path, stores_root: str | None = None, environ: Mapping[str, str] | None = None) -> SweepSpec:
    """A spec from a YAML file path or a shipped preset name (``mnist-quick``, ...)."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpecError(f"spec file {path} does not exist")
        text = path.read_text()
    else:
        names = spec_preset_names()
        if str(source) not in names:
            raise SpecError(f"{source!r} is neither a spec file nor a preset; presets are {names}")
        text = resources.files("sweeps").joinpath("presets", f"{source}.yaml").read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(f"spec {source}: not valid YAML: {' '.join(str(e).split())}") from None  # one line
    return SweepSpec.from_dict(data, stores_root=stores_root, environ=environ)


# -- reading a spec's sections (`SweepSpec.from_dict`) ---------------------------------------------

def _dataset_of(value: Any) -> DataConfig:
    ds = dict(_mapping("dataset", value))
    if "name" not in ds:
        spec_fail("dataset.name", "missing; use mnist or gsc")
    dataset = _typed(DataConfig, "dataset", ds)
    if not dataset.has_validation:
        spec_fail("dataset.validation_size", "0 leaves no validation split, and a sweep chooses configs on it; "
                  "use at least 1 (default 5000; validation_size 0 is for `sweeps train` reproductions)")
    return dataset


def _network_of(value: Any, dataset: str) -> tuple[NetworkSpec, str]:
    """The network and its preset's name ("" for a full network mapping)."""
    if not isinstance(value, (str, Mapping)):
        spec_fail("network", "give a preset name (see `sweeps networks`) or a full network mapping")
    try:
        if isinstance(value, str):
            return network_preset(value, dataset), value
        return NetworkSpec.from_dict(value), ""
    except ValueError as e:
        raise SpecError(f"network: {e}") from None


def _recipe_of(value: Any, preset_name: str, dataset: str) -> Recipe:
    """The preset's paper recipe (or the default one) with the spec's overrides."""
    rec = dict(_mapping("recipe", value))
    _reject_unknown("recipe", rec, {f.name for f in dataclasses.fields(Recipe)})
    base = paper_recipe(preset_name, dataset) if preset_name else Recipe()
    try:
        return base.replace(**rec)
    except ValueError as e:
        raise SpecError(str(e)) from None


def _space_of(value: Any) -> list[Param]:
    space = []
    for name, param in _mapping("space", value).items():
        param = _mapping(f"space.{name}", param)
        _reject_unknown(f"space.{name}", param, {"low", "high", "log", "choices", "integer"})
        space.append(Param(name=name, **param))
    return space


def _baselines_of(value: Any) -> list[Baseline]:
    baselines = []
    for i, b in enumerate(value or []):
        b = _mapping(f"baselines[{i}]", b)
        _reject_unknown(f"baselines[{i}]", b, {"name", "params", "preset"})
        if "name" not in b:
            spec_fail(f"baselines[{i}].name", "missing")
        try:
            baselines.append(Baseline(name=b["name"], params=dict(b.get("params") or {}), preset=b.get("preset")))
        except SpecError:
            raise
        except (TypeError, ValueError) as e:
            raise SpecError(f"baselines[{i}] ({b['name']}): {e}") from None
    return baselines


def _noise_of(value: Any, dataset: str) -> NoiseConfig:
    objectives = dict(_mapping("objectives", value))
    _reject_unknown("objectives", objectives, {"noise"})
    noise = _typed(NoiseConfig, "objectives.noise", objectives.get("noise"))
    if noise.kind is not None:
        try:
            dataset_facts(dataset).check_noise(noise.kind)
        except ValueError as e:
            spec_fail("objectives.noise.kind", str(e))
    return noise


def _stores_of(value: Any, stores_root: str | None, environ: Mapping[str, str] | None) -> Stores:
    stores = _typed(Stores, "stores", value)
    given = value.get("root") if isinstance(value, Mapping) else None
    root = choose_root(stores_root, given, environ)  # --root, the spec's, $SPARSE_SWEEPS_ROOT, ./sweeps-data
    return stores if root == stores.root else dataclasses.replace(stores, root=root)
