"""The Pareto math (`sweeps.search.pareto`) against brute force and by hand."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sweeps.search import pareto


def _brute_front(values):
    return [not any(all(o[k] >= p[k] for k in range(len(p))) and o != p for o in values) for p in values]


@pytest.mark.parametrize("dims", [2, 3])
def test_front_matches_brute_force_with_ties(dims):
    rng = random.Random(dims)
    values = [tuple(rng.choice([0.8, 0.85, 0.9, 0.95]) for _ in range(dims)) for _ in range(80)]
    assert pareto.pareto_mask(values).tolist() == _brute_front(values)
    if dims == 2:
        assert pareto.front_flags(values) == _brute_front(values)


def test_equal_points_on_the_front_all_stay():
    assert pareto.front_flags([(1, 1), (1, 1), (0.5, 0.5)]) == [True, True, False]
    assert pareto.front_flags([(1, 0.5), (0.9, 0.5)]) == [True, False]  # same y, less x: dominated
    assert pareto.front_flags([]) == []


def test_ranks_peel_fronts():
    pts = [(3, 1), (1, 3), (2, 2), (1, 1), (2, 0.5), (0, 0)]
    assert pareto.nondominated_rank(pts).tolist() == [0, 0, 0, 1, 1, 2]


def test_crowding_keeps_the_ends_and_orders_promotion():
    pts = np.array([(0.0, 1.0), (0.1, 0.9), (0.5, 0.5), (1.0, 0.0)])
    d = pareto.crowding_distance(pts)
    assert np.isinf(d[0]) and np.isinf(d[3]) and d[2] > d[1]
    # rank 0 first; within it the ends, then the most isolated
    order = pareto.promotion_order([*pts.tolist(), (0.05, 0.05)]).tolist()
    assert order[:2] == [0, 3] and order[2] == 2 and order[-1] == 4


def test_hypervolume_by_hand_and_anytime():
    ref = (0.0, 0.0)
    assert pareto.hypervolume([], ref) == 0.0
    assert pareto.hypervolume([(0.5, 0.5)], ref) == pytest.approx(0.25)
    # (1, .2) and (.5, .6): .2*1 + (.6-.2)*.5 = .4; a dominated point adds nothing
    assert pareto.hypervolume([(1, 0.2), (0.5, 0.6), (0.4, 0.1)], ref) == pytest.approx(0.4)
    assert pareto.hypervolume([(1, 0.2), (0.5, 0.6)], (0.6, 0.1)) == pytest.approx(0.4 * 0.1)
    rng = np.random.default_rng(0)
    pts = rng.random((40, 2))
    any_hv = pareto.anytime_hypervolume(pts, (0.2, 0.2))
    assert np.all(np.diff(any_hv) >= 0)
    assert any_hv[-1] == pytest.approx(pareto.hypervolume(pts, (0.2, 0.2)))
    # computed only when the front changes, yet the very floats of recomputing every prefix; a row
    # of -inf (a trial with no result) adds nothing
    pts[::7] = -np.inf
    prefixes = [pareto.hypervolume(pts[: i + 1][np.isfinite(pts[: i + 1]).all(axis=1)], (0.2, 0.2))
                for i in range(len(pts))]
    assert pareto.anytime_hypervolume(pts, (0.2, 0.2)).tolist() == prefixes
    grid = np.linspace(0.2, 1, 801)  # a Monte-Carlo-free check: area under the front's staircase
    front = pts[pareto.pareto_mask(pts)]
    heights = [max([y for x, y in front if x >= g] + [0.2]) - 0.2 for g in grid[:-1]]
    assert any_hv[-1] == pytest.approx(np.sum(heights) * (grid[1] - grid[0]), abs=2e-3)
