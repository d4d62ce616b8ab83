"""The Pareto math of a sweep: both objectives (validation accuracy, validation noise score) are
maximized. Plain functions over arrays of points; the service, `best`, the report's data, the
multi-objective early stopping and the replay benchmarks all use these.

* `front_flags`, `pareto_mask`: which points no other point dominates (equal points all kept, as
  in Optuna's ``best_trials``); two objectives take one sort and one pass, O(n log n);
* `nondominated_rank`: 0 for the front, 1 for the front of the rest, ... (NSGA-II's sorting);
* `crowding_distance`: NSGA-II's spread measure within one rank (ends are infinite);
* `promotion_order`: rank first, then crowding: the order in which MO-ASHA promotes;
* `hypervolume`: the area dominated by the points above a reference point (Optuna's exact
  algorithm); `anytime_hypervolume`: the same after each point arrives.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "as_points",
    "front_flags",
    "pareto_mask",
    "nondominated_rank",
    "crowding_distance",
    "promotion_order",
    "hypervolume",
    "anytime_hypervolume",
]


def as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """An (n, m) float array; a flat empty input gives shape (0, 2)."""
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2:
        raise ValueError(f"points: expected an (n, objectives) array, got shape {arr.shape}")
    return arr


def _dominated_by(p: np.ndarray) -> np.ndarray:
    """``d[i, j]``: point j dominates point i."""
    ge = np.all(p[None, :, :] >= p[:, None, :], axis=2)
    gt = np.any(p[None, :, :] > p[:, None, :], axis=2)
    return ge & gt


def front_flags(values: Sequence[tuple[float, float]]) -> list[bool]:
    """For each point of two objectives, whether no other point dominates it; equal points are all
    kept. One sort and one pass: O(n log n), so a 2,000-trial front takes milliseconds."""
    order = sorted(range(len(values)), key=lambda i: (-values[i][0], -values[i][1]))
    flags = [False] * len(values)
    best_y, i = -np.inf, 0
    while i < len(order):
        p, j = tuple(values[order[i]]), i
        while j < len(order) and tuple(values[order[j]]) == p:  # a run of equal points
            j += 1
        if p[1] > best_y:  # every earlier point has a larger x (or the same x and a larger y)
            for k in order[i:j]:
                flags[k] = True
        best_y = max(best_y, p[1])
        i = j
    return flags


def pareto_mask(points) -> np.ndarray:
    """True for the points no other point dominates (duplicates of a front point are all kept)."""
    p = as_points(points)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    if p.shape[1] == 2:
        return np.array(front_flags(p.tolist()), dtype=bool)
    return ~_dominated_by(p).any(axis=1)


def nondominated_rank(points) -> np.ndarray:
    """Non-domination rank of every point: 0 on the front, k on the front once ranks < k are removed."""
    p = as_points(points)
    dom = _dominated_by(p)
    rank = np.full(len(p), -1, dtype=int)
    left = np.ones(len(p), dtype=bool)
    r = 0
    while left.any():
        front = left & ~(dom & left[None, :]).any(axis=1)
        rank[front] = r
        left &= ~front
        r += 1
    return rank


def crowding_distance(points) -> np.ndarray:
    """NSGA-II crowding distance of each point among ``points`` (one rank): the ends are infinite."""
    p = as_points(points)
    n, m = p.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(p[:, j], kind="stable")
        span = p[order[-1], j] - p[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (p[order[2:], j] - p[order[:-2], j]) / span
    return dist


def promotion_order(points) -> np.ndarray:
    """Indices of ``points`` best first: by non-domination rank, then by crowding distance (most
    isolated first) within a rank, then by index. The order MO-ASHA promotes in."""
    p = as_points(points)
    rank = nondominated_rank(p)
    crowd = np.zeros(len(p))
    for r in np.unique(rank):
        idx = np.flatnonzero(rank == r)
        crowd[idx] = crowding_distance(p[idx])
    return np.array(sorted(range(len(p)), key=lambda i: (rank[i], -crowd[i], i)), dtype=int)


def hypervolume(points, reference: Sequence[float]) -> float:
    """Area (volume) dominated by ``points`` and bounded below by ``reference``; points that do not
    strictly beat the reference in every objective add nothing."""
    from sweeps.search.optuna_private import compute_hypervolume

    p = as_points(points)
    ref = np.asarray(reference, dtype=float)
    if len(p) == 0:
        return 0.0
    keep = np.all(p > ref, axis=1)
    if not keep.any():
        return 0.0
    # Optuna minimizes: negate both the points and the reference.
    return float(compute_hypervolume(-p[keep], -ref))


def anytime_hypervolume(points, reference: Sequence[float]) -> np.ndarray:
    """``out[i]``: the hypervolume of points[0..i] (non-decreasing); a point that does not beat
    ``reference`` (say a row of -inf for a trial with no result) adds nothing.

    Computed again only when a point joins the front so far: the hypervolume of a set is that of
    its front (Optuna's algorithm reduces a set to its unique front first, so the floats are the
    same), and recomputing it over every prefix cost O(n^2) (1 s at 2,000 trials)."""
    p = as_points(points)
    ref = np.asarray(reference, dtype=float)
    out = np.zeros(len(p))
    front = np.zeros((0, p.shape[1]))
    hv = 0.0
    for i, q in enumerate(p):
        if np.all(q > ref) and not np.any(np.all(front >= q, axis=1)):
            front = np.vstack([front[~np.all(q >= front, axis=1)], q])
            hv = hypervolume(front, ref)
        out[i] = hv
    return out
