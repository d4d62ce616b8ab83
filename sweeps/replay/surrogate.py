"""A surrogate of real trials, fitted on a replay table: per-epoch validation accuracy and noise
score (over its maximum) of any config in the table's space, with the measured trial noise added.

The mean is a scikit-learn random forest over the searched parameters (log-scaled where their
range is): one forest per objective, each predicting every epoch (multi-output), so that the
objective with the larger spread (the noise score) does not choose the splits for accuracy. Trial-to-trial noise is
measured, not assumed: the table repeats some configs with other model seeds, and the pooled
within-config standard deviation per epoch and objective is what `sample` adds (one draw per
trial and objective, kept across its epochs: a lucky seed stays lucky). Baselines are not
modelled: a simulated baseline replays one of its recorded runs.

`holdout` fits on part of the design and scores the rest: Spearman rank correlation and mean
absolute error of the final epoch, for both objectives, printed with every simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .table import ReplayTable

__all__ = ["Surrogate", "Fidelity", "FlatForest", "fit_surrogate", "holdout"]


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


class Surrogate:
    def __init__(self, table: ReplayTable, forests: tuple[Any, Any], noise_std: np.ndarray, seconds: np.ndarray) -> None:
        self.table = table
        self.forests = tuple(FlatForest(f) for f in forests)  # accuracy, noise score/max
        self.epochs = table.epochs
        self.noise_std = noise_std  # (2, epochs): accuracy, noise score/max
        self.seconds = seconds  # (epochs,): median seconds per epoch in the table

    def predict(self, params_list: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean (accuracy, noise score/max) per epoch, each (configs, epochs)."""
        x = self.table.features(params_list)
        acc, noise = (f.predict(x).reshape(len(params_list), self.epochs) for f in self.forests)
        return acc, noise

    def sample(self, params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One simulated trial of ``params``: (accuracy, noise score/max) per epoch, trial noise added."""
        acc, noise = self.predict([params])
        z = rng.standard_normal(2)
        acc = np.clip(acc[0] + z[0] * self.noise_std[0], 0.0, 1.0)
        noise = np.clip(noise[0] + z[1] * self.noise_std[1], 0.0, 1.0)
        return acc, noise


def _trial_noise(table: ReplayTable) -> np.ndarray:
    """Pooled within-config standard deviation per epoch of (accuracy, noise/max), over the table's
    repeated configs (a design config and its repeats with other seeds)."""
    groups: dict[str, list[dict]] = {}
    for r in table.searched():
        key = r.get("of") or r["id"]
        groups.setdefault(key, []).append(r)
    variances, dof = np.zeros((2, table.epochs)), 0
    for rows in groups.values():
        if len(rows) < 2:
            continue
        acc, noise, _ = table.curves(rows)
        variances[0] += acc.var(axis=0, ddof=1) * (len(rows) - 1)
        variances[1] += noise.var(axis=0, ddof=1) * (len(rows) - 1)
        dof += len(rows) - 1
    if dof == 0:
        raise ValueError(f"replay table {table.path}: no repeated configs, so trial noise cannot be measured; "
                         f"build it with --repeat-configs >= 1 --repeat-seeds >= 2")
    return np.sqrt(variances / dof)


def _forest(seed: int):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=None, random_state=seed, n_jobs=1)


def fit_surrogate(table: ReplayTable, seed: int = 0, rows: list[dict] | None = None) -> Surrogate:
    """Fit on ``rows`` (default: every design row; repeats only measure the noise)."""
    rows = rows if rows is not None else [r for r in table.searched() if r["kind"] == "design"]
    acc, noise, secs = table.curves(rows)
    x = table.features([r["params"] for r in rows])
    forests = (_forest(seed).fit(x, acc), _forest(seed).fit(x, noise))
    return Surrogate(table, forests, _trial_noise(table), np.median(secs, axis=0))


def holdout(table: ReplayTable, fraction: float = 0.2, seed: int = 0) -> Fidelity:
    """Fit on a random (1 - fraction) of the design rows and score the rest's final epoch."""
    from scipy.stats import spearmanr

    rows = [r for r in table.searched() if r["kind"] == "design"]
    order = np.random.default_rng(seed).permutation(len(rows))
    n_test = max(1, int(round(len(rows) * fraction)))
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    model = fit_surrogate(table, seed, rows=train)
    acc_hat, noise_hat = model.predict([r["params"] for r in test])
    acc, noise, _ = table.curves(test)
    return Fidelity(
        spearman_accuracy=float(spearmanr(acc[:, -1], acc_hat[:, -1]).statistic),
        spearman_noise=float(spearmanr(noise[:, -1], noise_hat[:, -1]).statistic),
        mae_accuracy=float(np.mean(np.abs(acc[:, -1] - acc_hat[:, -1]))),
        mae_noise=float(np.mean(np.abs(noise[:, -1] - noise_hat[:, -1]))),
        n_train=len(train), n_test=len(test),
    )
