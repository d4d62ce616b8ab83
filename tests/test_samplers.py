"""The searchers `searcher.algorithm` names, built as a sweep builds them (behind the view that
hides baselines): the space-filling one is a real Sobol sequence, the noise-aware one is BoTorch's."""

from __future__ import annotations

import optuna
import pytest
from scipy.stats import qmc

from sweeps.search import optuna_private as internals
from sweeps.search.samplers import SAMPLERS, make_sampler

SPACE = {"x": optuna.distributions.FloatDistribution(0, 1), "y": optuna.distributions.FloatDistribution(0, 1)}


def _ask_points(sampler, n, baselines=2):
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    for i in range(baselines):  # a sweep's baselines come first and suggest nothing
        t = study.ask()
        t.set_user_attr("baseline", f"b{i}")
        study.tell(t, [0.5, 0.5])
    points = []
    for _ in range(n):
        t = study.ask(SPACE)
        points.append((t.params["x"], t.params["y"]))
        study.tell(t, [t.params["x"], 1 - t.params["y"]])
    return points


def test_qmc_is_the_seeded_scrambled_sobol_sequence_even_after_baselines():
    # Optuna draws the first searched trial at random (it infers the space from it); the next ones
    # are the sequence. What holds for any scrambled Sobol sequence: its first 8 points (a power
    # of two) in [0,1)^2 are a (0, 3, 2)-net, one point in each of the 8 elementary intervals of
    # every shape (8x1, 4x2, 2x4, 1x8).
    points = _ask_points(internals.searched_only(make_sampler("qmc", seed=3, budget_trials=8)), 9)[1:]
    for cols in (1, 2, 4, 8):
        rows = 8 // cols
        cells = {(int(x * cols), int(y * rows)) for x, y in points}
        assert len(cells) == 8, (cols, rows, points)
    assert points == _ask_points(internals.searched_only(make_sampler("qmc", seed=3, budget_trials=8)), 9)[1:]
    assert points != _ask_points(internals.searched_only(make_sampler("qmc", seed=4, budget_trials=8)), 9)[1:]
    assert qmc.discrepancy([list(p) for p in points]) < qmc.discrepancy(
        [list(p) for p in _ask_points(make_sampler("random", seed=3, budget_trials=8), 8)])


def test_random_points_are_not_a_net():
    """The check above can fail: random points in the unit square rarely fill every cell."""
    points = _ask_points(make_sampler("random", seed=3, budget_trials=8), 8)
    assert any(len({(int(x * c), int(y * (8 // c))) for x, y in points}) < 8 for c in (1, 2, 4, 8))


def test_qnehvi_is_botorchs_noisy_hypervolume_sampler():
    from optuna_integration import BoTorchSampler
    from optuna_integration.botorch import qnehvi_candidates_func

    sampler = make_sampler("qnehvi", seed=0, budget_trials=30)
    assert isinstance(sampler, BoTorchSampler)
    assert sampler._candidates_func is qnehvi_candidates_func and sampler._n_startup_trials == 10


def test_unknown_searcher_names_the_choices():
    with pytest.raises(ValueError, match="choose one of random, tpe, tpe-mv, nsga2, gp, qmc, qnehvi"):
        make_sampler("cma", seed=0, budget_trials=8)
    assert "qmc" in SAMPLERS and "qnehvi" in SAMPLERS
