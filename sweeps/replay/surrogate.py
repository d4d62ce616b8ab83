"""A surrogate of real trials, fitted on a replay table: the expected per-epoch validation accuracy
and noise score (over its maximum) of any config in the table's space, and how one trained model
scatters around it.

**The truth** (`Surrogate.truth`, `Surrogate.mean`): a scikit-learn random forest per objective over
the searched parameters (log-scaled where their range is), each predicting every epoch
(multi-output), fitted on the design rows *denoised* of the model seed they were trained with (every
design row used seed 0; the table's estimate of seed 0's common effect is subtracted, so the forest
estimates the expectation over seeds). A baseline's truth is the mean of its recorded seeds.

**The noise** (`NoiseModel`), measured on the table's configs trained with several model seeds (the
repeated design configs and the baselines): a two-way analysis (config x seed) of their final
values splits a trial's deviation from its config's expectation into

* a *seed effect*, common to every config trained with the same model seed (seed 1 lifted all 7
  configs' noise scores, seed 3 lowered them all: F test p = 0.0007 on the committed table), and
* the config's own deviation (the residual): pooled over those configs, and bounded per level
  of the config by what the design's held-out residuals allow (`bound_by_design`: near the front
  the design shows less scatter than the pooled figure).

A real sweep trains every searched config with the spec's seed and the k-th replicates with seed
spec.seed + k, so one sweep shares one seed effect per model seed across its configs. `World`
holds those effects for one simulated sweep: drawn (``mode="drawn"``: a sweep of this space in
general) or the table's own estimates (``mode="recorded"``: the seeds the real sweeps train, for
calibration against them; a baseline then replays its recorded run of that seed). Each
standard deviation scales per epoch like the pooled within-config spread; one draw per trial and
objective is kept across its epochs (a lucky seed stays lucky). Nothing is counted twice: the
forest learns the expectation, and the simulator adds each noise component once.

`holdout` fits on part of the design and scores the rest: Spearman rank correlation and mean
absolute error of the final epoch, for both objectives, printed with every simulation.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .table import ReplayTable

__all__ = ["Surrogate", "Fidelity", "FlatForest", "NoiseModel", "World", "bound_by_design", "fit_noise", "fit_surrogate",
           "holdout"]

log = logging.getLogger(__name__)
OBJECTIVES = ("accuracy", "noise")  # index 0, 1 of every (2, ...) array here


class FlatForest:
    """A fitted scikit-learn forest regressor flattened into arrays, predicting one config at a
    time about a hundred times faster than ``forest.predict`` (whose per-call overhead of 200 tree
    objects dominates a simulated sweep), with the same numbers: every tree is walked at once, one
    depth level per step, comparing the float32 features as scikit-learn does."""

    def __init__(self, forest: Any) -> None:
        trees = [e.tree_ for e in forest.estimators_]
        offsets = np.cumsum([0] + [t.node_count for t in trees[:-1]])
        self.roots = offsets.astype(np.intp)
        shift = lambda child, off: np.where(child >= 0, child + off, -1)  # noqa: E731
        self.left = np.concatenate([shift(t.children_left, o) for t, o in zip(trees, offsets)]).astype(np.intp)
        self.right = np.concatenate([shift(t.children_right, o) for t, o in zip(trees, offsets)]).astype(np.intp)
        self.feature = np.concatenate([np.maximum(t.feature, 0) for t in trees]).astype(np.intp)
        self.threshold = np.concatenate([t.threshold for t in trees])
        self.value = np.concatenate([t.value[:, :, 0] for t in trees])  # (nodes, outputs)
        self.depth = max(t.max_depth for t in trees)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean over trees for each row of ``x``: (rows, outputs)."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        out = np.empty((len(x), self.value.shape[1]))
        for i, row in enumerate(x):
            node = self.roots.copy()
            for _ in range(self.depth):
                leaf = self.left[node] < 0
                if leaf.all():
                    break
                go_left = row[self.feature[node]] <= self.threshold[node]
                node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
            out[i] = self.value[node].mean(axis=0)
        return out


@dataclass(frozen=True)
class Fidelity:
    """How well the surrogate predicts configs it was not fitted on (final epoch)."""

    spearman_accuracy: float
    spearman_noise: float
    mae_accuracy: float
    mae_noise: float
    n_train: int
    n_test: int

    def line(self) -> str:
        return (f"surrogate on {self.n_test} held-out configs (fitted on {self.n_train}): Spearman accuracy "
                f"{self.spearman_accuracy:.3f}, noise score {self.spearman_noise:.3f}; mean abs error accuracy "
                f"{self.mae_accuracy:.4f}, noise score/max {self.mae_noise:.4f}")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)




@dataclass(frozen=True, eq=False)
class NoiseModel:
    """How trials of one config scatter around its expectation, per objective and epoch.

    ``seed_sd`` and ``trial_sd`` (2, epochs): standard deviation of the common seed effect and of a
    trial's own deviation. ``seed_effects``: the table's estimate of each recorded model seed's
    common effect (2, epochs), relative to the mean over those seeds. ``configs``/``seeds``: the
    configs and seeds they were measured on; ``seed_p``: the F test's p-value that seeds have no
    common effect (final epoch, per objective)."""

    seed_sd: np.ndarray
    trial_sd: np.ndarray
    seed_effects: dict[int, np.ndarray]
    configs: tuple[str, ...]
    seeds: tuple[int, ...]
    seed_p: tuple[float, float]
    # Per objective, the final-epoch level (the config's true value) at bin centres and the trial
    # standard deviation there (`bound_by_design`); empty: ``trial_sd`` everywhere.
    levels: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    level_sd: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    level_bound: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # the held-out residuals' sd
    # Each baseline's own trial sd (2, epochs), from its recorded seeds: its whole spread less the
    # seed effect's (a dense net spreads two to three times more than a sparse one)
    baseline_sd: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def total_sd(self) -> np.ndarray:
        """A single trial's standard deviation around its config's expectation (2, epochs), where
        the trial noise is ``trial_sd`` (the pooled figure, the largest)."""
        return np.sqrt(self.seed_sd**2 + self.trial_sd**2)

    def total_sd_at(self, level: tuple[float, float], baseline: str | None = None) -> np.ndarray:
        """A single trial's standard deviation (seed effect and its own) at ``level`` (2, epochs),
        or of ``baseline`` where its spread was measured."""
        return np.sqrt(self.seed_sd**2 + self.own_sd(level, baseline) ** 2)

    def own_sd(self, level: tuple[float, float], baseline: str | None = None) -> np.ndarray:
        """A trial's own standard deviation (2, epochs): ``baseline``'s measured spread where there
        is one, else a searched config's at ``level`` (`trial_sd_at`)."""
        own = self.baseline_sd.get(baseline) if baseline is not None else None
        return self.trial_sd_at(level) if own is None else own

    def trial_sd_at(self, level: tuple[float, float]) -> np.ndarray:
        """A trial's own standard deviation (2, epochs) for a config whose true final values are
        ``level``: the level-dependent final figure (interpolated between bins, flat beyond),
        scaled per epoch like ``trial_sd``."""
        out = self.trial_sd.copy()
        for o in range(2):
            if self.levels[o]:
                final = float(np.interp(level[o], self.levels[o], self.level_sd[o]))
                out[o] = self.trial_sd[o] * (final / self.trial_sd[o, -1] if self.trial_sd[o, -1] > 0 else 0.0)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"seed_sd_final": self.seed_sd[:, -1].tolist(), "trial_sd_final": self.trial_sd[:, -1].tolist(),
                "total_sd_final": self.total_sd[:, -1].tolist(), "objectives": list(OBJECTIVES),
                "seed_effects_final": {str(k): v[:, -1].tolist() for k, v in sorted(self.seed_effects.items())},
                "configs": list(self.configs), "seeds": list(self.seeds), "seed_effect_p": list(self.seed_p),
                "levels": [list(v) for v in self.levels], "level_trial_sd": [list(v) for v in self.level_sd],
                "level_heldout_residual_sd": [list(v) for v in self.level_bound],
                "baseline_trial_sd_final": {k: v[:, -1].tolist() for k, v in sorted(self.baseline_sd.items())}}


def _groups(table: ReplayTable) -> dict[str, list[dict]]:
    """Configs trained with several model seeds: design configs with their repeats, and baselines."""
    groups: dict[str, list[dict]] = {}
    for r in table.searched():
        groups.setdefault(r.get("of") or r["id"], []).append(r)
    for b in table.spec.baselines:
        rows = [r for r in table.baseline_rows(b.name) if len(r["epochs"]) == table.epochs]
        if rows:
            groups[f"baseline:{b.name}"] = rows
    return {k: v for k, v in groups.items() if len(v) >= 2}


def fit_noise(table: ReplayTable) -> NoiseModel:
    """Two-way (config x seed) analysis of the configs that share the same model seeds (at least 2
    configs and 2 seeds): the seed effect's variance from the seeds' mean square over the
    residual's, the residual's as the trial noise."""
    from scipy import stats

    every = _groups(table)
    searched = {k: v for k, v in every.items() if not k.startswith("baseline:")}
    # The seed effect and a searched config's own noise come from the searched configs when at
    # least two were repeated (a baseline's much larger spread would inflate both); each baseline
    # then gets its own spread.
    groups = searched if len(searched) >= 2 else every
    if not groups:
        raise ValueError(f"replay table {table.path}: no config with several model seeds, so trial noise cannot be "
                         f"measured; build it with --repeat-configs >= 1 --repeat-seeds >= 2")
    common = sorted(set.intersection(*({r["seed"] for r in rows} for rows in groups.values())))
    names = sorted(groups)
    if len(common) < 2 or len(names) < 2:
        raise ValueError(f"replay table {table.path}: the repeated configs share fewer than 2 model seeds "
                         f"({common}); cannot separate seed effects from trial noise")
    E = table.epochs
    # cube[o, c, s, e]: objective o of config c with seed s at epoch e
    cube = np.zeros((2, len(names), len(common), E))
    for c, name in enumerate(names):
        by_seed = {r["seed"]: r for r in groups[name]}
        acc, noise, _ = table.curves([by_seed[s] for s in common])
        cube[0, c], cube[1, c] = acc, noise
    C, S = len(names), len(common)
    dev = cube - cube.mean(axis=2, keepdims=True)  # off each config's mean over seeds
    effects = dev.mean(axis=1)  # (2, S, E): each seed's common effect
    resid = dev - effects[:, None]
    ms_seed = C * effects.var(axis=1, ddof=1)  # (2, E)
    ms_resid = (resid**2).sum(axis=(1, 2)) / ((C - 1) * (S - 1))
    seed_var = np.maximum(0.0, (ms_seed - ms_resid) / C)
    p = tuple(float(stats.f.sf(ms_seed[o, -1] / ms_resid[o, -1], S - 1, (C - 1) * (S - 1))) if ms_resid[o, -1] > 0
              else 0.0 for o in range(2))
    own: dict[str, np.ndarray] = {}
    for key, rows in every.items():
        if key.startswith("baseline:") and len(rows) >= 3:
            acc, noise, _ = table.curves(rows)
            spread = np.stack([acc.var(axis=0, ddof=1), noise.var(axis=0, ddof=1)])
            own[key.split(":", 1)[1]] = np.sqrt(np.maximum(0.0, spread - seed_var))
    model = NoiseModel(seed_sd=np.sqrt(seed_var), trial_sd=np.sqrt(ms_resid),
                       seed_effects={s: effects[:, i, :].copy() for i, s in enumerate(common)},
                       configs=tuple(names), seeds=tuple(common), seed_p=p, baseline_sd=own)  # type: ignore[arg-type]
    log.debug("noise model: seed sd %s, trial sd %s (final epoch)", model.seed_sd[:, -1], model.trial_sd[:, -1])
    return model


def bound_by_design(table: ReplayTable, noise: NoiseModel, bins: int = 4, folds: int = 5, seed: int = 0) -> NoiseModel:
    """``noise`` with a level-dependent trial standard deviation: no more, at any level, than the
    design's held-out residuals there allow.

    The repeated configs measure the trial noise pooled over a handful of configs. The 300 design
    configs bound it where it matters: a config's value less the surrogate's prediction from the
    *other* folds (and less seed 0's effect) deviates by the trial noise plus the surrogate's own
    error, so the root mean square of those residuals, per bin of predicted level (``bins``
    quantile bins per objective), is an upper bound on the trial noise at that level. The model
    keeps the pooled figure where it is below the bound and the bound where it is not (near the
    front, on the committed table: 0.021 against a pooled 0.025)."""
    rows = _design(table)
    order = np.random.default_rng([seed, 5151]).permutation(len(rows)) % folds
    pred = np.zeros((len(rows), 2))
    for f in range(folds):
        model = fit_surrogate(table, rows=[r for r, k in zip(rows, order) if k != f], noise=noise)
        test = [i for i, k in enumerate(order) if k == f]
        a, n = model.mean([rows[i]["params"] for i in test])
        pred[test, 0], pred[test, 1] = a[:, -1], n[:, -1]
    acc, noise_score, _ = table.curves(rows)
    shift = np.array([noise.seed_effects.get(int(r["seed"]), np.zeros((2, table.epochs)))[:, -1] for r in rows])
    resid = np.c_[acc[:, -1], noise_score[:, -1]] - pred - shift
    levels, sds, bounds = [], [], []
    for o in range(2):
        edges = np.quantile(pred[:, o], np.linspace(0, 1, bins + 1))
        which = np.clip(np.searchsorted(edges, pred[:, o], side="right") - 1, 0, bins - 1)
        centre = [float(np.median(pred[which == b, o])) for b in range(bins)]
        bound = [float(np.sqrt(np.mean(resid[which == b, o] ** 2))) for b in range(bins)]
        levels.append(tuple(centre))
        bounds.append(tuple(bound))
        sds.append(tuple(min(float(noise.trial_sd[o, -1]), b) for b in bound))
    log.debug("trial noise by level: %s", sds)
    return dataclasses.replace(noise, levels=tuple(levels), level_sd=tuple(sds), level_bound=tuple(bounds))  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class World:
    """One simulated sweep's model-seed effects: ``effect(k)`` is the (2, epochs) shift every config
    trained with model seed k gets. ``mode``: "drawn" (fresh effects from the seed standard deviation)
    or "recorded" (the table's estimates for the seeds it recorded; drawn beyond them)."""

    noise: NoiseModel
    mode: str
    seed: int
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("drawn", "recorded"):
            raise ValueError(f"mode {self.mode!r}: 'drawn' or 'recorded'")

    def effect(self, model_seed: int) -> np.ndarray:
        if model_seed not in self._cache:
            if self.mode == "recorded" and model_seed in self.noise.seed_effects:
                self._cache[model_seed] = self.noise.seed_effects[model_seed]
            else:
                z = np.random.default_rng([self.seed, 7411, model_seed]).standard_normal(2)
                self._cache[model_seed] = z[:, None] * self.noise.seed_sd
        return self._cache[model_seed]


class Surrogate:
    def __init__(self, table: ReplayTable, forests: tuple[Any, Any], noise: NoiseModel, seconds: np.ndarray) -> None:
        self.table = table
        self.forests = tuple(FlatForest(f) for f in forests)  # accuracy, noise score/max
        self.epochs = table.epochs
        self.noise = noise
        self.seconds = seconds  # (epochs,): median seconds per epoch in the table
        self._baselines: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._recorded: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._memo: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        for b in table.spec.baselines:
            rows = [r for r in table.baseline_rows(b.name) if len(r["epochs"]) == table.epochs]
            if rows:
                acc, noise_, _ = table.curves(rows)
                self._baselines[b.name] = (acc.mean(axis=0), noise_.mean(axis=0))
                for r, a, n in zip(rows, acc, noise_):
                    self._recorded.setdefault((b.name, int(r["seed"])), (a, n))

    def mean(self, params_list: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Expected (accuracy, noise score/max) per epoch, each (configs, epochs): the truth."""
        x = self.table.features(params_list)
        acc, noise = (f.predict(x).reshape(len(params_list), self.epochs) for f in self.forests)
        return acc, noise

    predict = mean

    def _mean_of(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """`mean` of one config, remembered (a simulated sweep draws each config several times)."""
        key = tuple(sorted(params.items()))
        if key not in self._memo:
            if len(self._memo) > 50_000:
                self._memo.clear()
            a, n = self.mean([params])
            self._memo[key] = (a[0], n[0])
        return self._memo[key]

    def baseline_mean(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A baseline's expected curves: the mean of its recorded seeds."""
        if name not in self._baselines:
            raise KeyError(f"replay table {self.table.path}: no recorded runs of baseline {name!r}")
        return self._baselines[name]

    def truth(self, params: dict[str, Any] | None, baseline: str | None = None) -> tuple[float, float]:
        """The expected final (accuracy, noise score/max) of a config or a baseline."""
        if baseline is not None:
            acc, noise = self.baseline_mean(baseline)
            return float(acc[-1]), float(noise[-1])
        acc, noise = self._mean_of(params)
        return float(acc[-1]), float(noise[-1])

    def draw(self, params: dict[str, Any] | None, baseline: str | None, model_seed: int, world: World,
             key: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """One trained model of a config (or ``baseline``) with ``model_seed``: (accuracy, noise
        score/max) per epoch. Its own deviation comes from ``key`` alone (the same key, the same
        draw), its seed effect from ``world``. In a "recorded" world a baseline with a recorded
        seed replays that run."""
        if baseline is not None and world.mode == "recorded" and (baseline, model_seed) in self._recorded:
            acc, noise = self._recorded[(baseline, model_seed)]
            return acc.copy(), noise.copy()
        if baseline is not None:
            acc, noise = self.baseline_mean(baseline)
        else:
            acc, noise = self._mean_of(params)
        z = np.random.default_rng([world.seed, 9203, *key]).standard_normal(2)
        sd = self.noise.own_sd((float(acc[-1]), float(noise[-1])), baseline)
        shift = world.effect(model_seed) + z[:, None] * sd
        return np.clip(acc + shift[0], 0.0, 1.0), np.clip(noise + shift[1], 0.0, 1.0)


def _forest(seed: int):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=None, random_state=seed, n_jobs=1)


def _design(table: ReplayTable) -> list[dict]:
    return [r for r in table.searched() if r["kind"] == "design"]


def fit_surrogate(table: ReplayTable, seed: int = 0, rows: list[dict] | None = None,
                  noise: NoiseModel | None = None) -> Surrogate:
    """Fit on ``rows`` (default: every design row; repeats and baselines measure the noise), each
    row's values less its model seed's common effect (the table's estimate; 0 for a seed the
    repeats did not record)."""
    rows = rows if rows is not None else _design(table)
    if noise is None:
        noise = bound_by_design(table, fit_noise(table))
    acc, noise_score, secs = table.curves(rows)
    shift = np.stack([noise.seed_effects.get(int(r["seed"]), np.zeros((2, table.epochs))) for r in rows])
    x = table.features([r["params"] for r in rows])
    forests = (_forest(seed).fit(x, acc - shift[:, 0]), _forest(seed).fit(x, noise_score - shift[:, 1]))
    return Surrogate(table, forests, noise, np.median(secs, axis=0))


def holdout(table: ReplayTable, fraction: float = 0.2, seed: int = 0) -> Fidelity:
    """Fit on a random (1 - fraction) of the design rows and score the rest's final epoch."""
    from scipy.stats import spearmanr

    rows = _design(table)
    order = np.random.default_rng(seed).permutation(len(rows))
    n_test = max(1, int(round(len(rows) * fraction)))
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    model = fit_surrogate(table, seed, rows=train, noise=fit_noise(table))
    acc_hat, noise_hat = model.mean([r["params"] for r in test])
    acc, noise, _ = table.curves(test)
    return Fidelity(
        spearman_accuracy=float(spearmanr(acc[:, -1], acc_hat[:, -1]).statistic),
        spearman_noise=float(spearmanr(noise[:, -1], noise_hat[:, -1]).statistic),
        mae_accuracy=float(np.mean(np.abs(acc[:, -1] - acc_hat[:, -1]))),
        mae_noise=float(np.mean(np.abs(noise[:, -1] - noise_hat[:, -1]))),
        n_train=len(train), n_test=len(test),
    )
