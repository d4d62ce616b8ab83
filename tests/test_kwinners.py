"""k-winners-take-all: selection, ties, negatives, k rounding, duty cycles, boosting, gradients,
state_dict round trips and parity with the reference library (benchmarks/reference_nupic.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import sparsity
from sparsity import KWinners, KWinners2d
from sparsity import functional as F

from benchmarks import reference_nupic as ref


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ----------------------------------------------------------------------------- hand-built winners


def test_1d_known_winners_train_and_eval():
    kw = KWinners(5, percent_on=0.4, boost_strength=0.0)  # k = round(2.0) = 2, k_inference = int(2 * 1.5) = 3
    assert (kw.k, kw.k_inference) == (2, 3)
    x = t([[1, 5, 3, -2, 4], [0.5, -1, 2, 7, 0]])
    assert torch.equal(kw(x), t([[0, 5, 0, 0, 4], [0, 0, 2, 7, 0]]))
    kw.eval()
    assert torch.equal(kw(x), t([[0, 5, 3, 0, 4], [0.5, 0, 2, 7, 0]]))


def test_1d_winners_can_be_negative_and_keep_raw_values():
    kw = KWinners(4, percent_on=0.5, boost_strength=0.0)
    x = t([[-3, -1, -2, -5], [-1, 0, -4, -2]]).requires_grad_()
    y = kw(x)
    assert torch.equal(y, t([[0, -1, -2, 0], [-1, 0, 0, 0]]))
    # Only outputs > 0 count as active: no unit fired.
    assert torch.equal(kw.duty_cycle, torch.zeros(4))
    # Negative and zero winners still receive gradient.
    y.sum().backward()
    assert torch.equal(x.grad, t([[0, 1, 1, 0], [1, 1, 0, 0]]))


def test_1d_ties_break_ties_false_all_tied_win():
    x = t([[1, 3, 3, 3, 0], [2, 2, 1, 0, 5]])
    kw = KWinners(5, percent_on=0.4, boost_strength=0.0, break_ties=False)  # k = 2
    y = kw(x)
    assert torch.equal(y, t([[0, 3, 3, 3, 0], [2, 2, 0, 0, 5]]))
    assert (y != 0).sum(1).tolist() == [3, 3]  # more than k


def test_1d_ties_break_ties_true_exactly_k():
    x = t([[1, 3, 3, 3, 0], [2, 2, 1, 0, 5]])
    kw = KWinners(5, percent_on=0.4, boost_strength=0.0, break_ties=True)
    y = kw(x)
    assert (y != 0).sum(1).tolist() == [2, 2]
    assert set(y[0].tolist()) == {0.0, 3.0}  # two of the tied 3s
    assert y[1, 4] == 5 and (y[1, :2] != 0).sum() == 1  # 5 and one of the tied 2s
    assert torch.equal(y[y != 0], x[y != 0])


def test_2d_global_known_winners():
    # C=2, H=W=2: n = 8, percent_on 0.25 -> k = 2 over the whole sample.
    kw = KWinners2d(2, percent_on=0.25, boost_strength=0.0)
    x = t([[[[1, 9], [3, 4]], [[8, -1], [2, 0]]],
           [[[-5, -6], [-7, -1]], [[-2, -3], [-8, -4]]]])
    y = kw(x)
    assert kw.k_at(2, 2) == 2
    assert torch.equal(y, t([[[[0, 9], [0, 0]], [[8, 0], [0, 0]]],
                             [[[0, 0], [0, -1]], [[-2, 0], [0, 0]]]]))


def test_2d_local_known_winners():
    # Local: k = round(C * percent_on) = round(4 * 0.5) = 2 channels at each of the H*W positions.
    kw = KWinners2d(4, percent_on=0.5, boost_strength=0.0, local=True)
    x = torch.arange(4 * 3, dtype=torch.float32).view(1, 4, 1, 3)  # channel c, position j: 3c + j
    x[0, 0, 0, 2] = 100.0  # channel 0 wins at position 2
    y = kw(x)
    expect = torch.zeros_like(x)
    expect[0, 2:, 0, :2] = x[0, 2:, 0, :2]  # channels 2, 3 at positions 0, 1
    expect[0, 0, 0, 2] = 100.0
    expect[0, 3, 0, 2] = x[0, 3, 0, 2]
    assert torch.equal(y, expect)
    assert ((y != 0).sum(dim=1) == 2).all()


def test_2d_local_ties():
    x = torch.ones(2, 4, 2, 2)
    x[:, 3] = 0.0  # three channels tied at 1, one at 0, at every position; k = 2
    y_all = KWinners2d(4, 0.5, boost_strength=0.0, local=True, break_ties=False)(x)
    assert ((y_all != 0).sum(dim=1) == 3).all()
    y_k = KWinners2d(4, 0.5, boost_strength=0.0, local=True, break_ties=True)(x)
    assert ((y_k != 0).sum(dim=1) == 2).all()


def test_2d_global_ties():
    x = torch.zeros(1, 2, 3, 3)
    x[0, 0, 0, :] = 5.0  # three units tied at the top, k = round(18 * 1/9) = 2
    y_all = KWinners2d(2, 1 / 9, boost_strength=0.0, break_ties=False)(x)
    assert int((y_all != 0).sum()) == 3
    y_k = KWinners2d(2, 1 / 9, boost_strength=0.0, break_ties=True)(x)
    assert int((y_k != 0).sum()) == 2


def test_eval_mode_uses_k_inference_2d():
    kw = KWinners2d(2, percent_on=0.25, boost_strength=0.0)  # n=8: k = 2, k_inference = round(3.0) = 3
    x = torch.randn(3, 2, 2, 2)
    assert ((kw(x) != 0).flatten(1).sum(1) == 2).all()
    kw.eval()
    assert kw.k_at(2, 2, training=False) == 3
    assert ((kw(x) != 0).flatten(1).sum(1) == 3).all()


def test_input_shape_checked():
    with pytest.raises(ValueError, match="n=5"):
        KWinners(5, 0.4)(torch.randn(2, 6))
    with pytest.raises(ValueError, match="channels=3"):
        KWinners2d(3, 0.4)(torch.randn(2, 4, 2, 2))


# ----------------------------------------------------------------------------- k rounding


@pytest.mark.parametrize(
    "n, p, k, k_inf",
    [
        (10, 0.25, 2, 3),      # round(2.5) = 2 (half to even); int(2 * 1.5) = 3
        (10, 0.75, 8, 10),     # round(7.5) = 8; int(12) capped at n = 10
        (100, 0.125, 12, 18),  # round(12.5) = 12; int(12 * 1.5) = 18, not round(18.75) = 19
        (700, 100 / 700, 100, 150),
        (150, 50 / 150, 50, 75),
    ],
)
def test_k_rounding_1d(n, p, k, k_inf):
    kw = KWinners(n, p)
    assert (kw.k, kw.k_inference) == (k, k_inf)


@pytest.mark.parametrize(
    "c, h, w, p, k, k_inf",
    [
        (2, 5, 5, 0.25, 12, 19),  # round(12.5) = 12; round(50 * 0.25 * 1.5) = round(18.75) = 19 (1-D rule: 18)
        (32, 12, 12, 400 / 4608, 400, 600),
        (64, 4, 4, 300 / 1024, 300, 450),
        (64, 14, 14, 1200 / 12544, 1200, 1800),
        (64, 5, 5, 200 / 1600, 200, 300),
    ],
)
def test_k_rounding_2d_global(c, h, w, p, k, k_inf):
    kw = KWinners2d(c, p)
    assert (kw.k_at(h, w), kw.k_at(h, w, training=False)) == (k, k_inf)
    r = ref.KWinners2d(c, p)
    r(torch.zeros(1, c, h, w))
    assert (r.k, r.k_inference) == (k, k_inf)


@pytest.mark.parametrize(
    "c, p, k, k_inf",
    [
        (10, 0.25, 2, 4),   # round(2.5) = 2; round(10 * 0.25 * 1.5) = round(3.75) = 4 (1-D rule: 3)
        (8, 0.25, 2, 3),
        # The reference computes percent_on * k_inference_factor first: 30 * (0.1 * 1.5) =
        # 4.500000000000001 -> 5, whereas (30 * 0.1) * 1.5 = 4.5 -> 4.
        (30, 0.1, 3, 5),
    ],
)
def test_k_rounding_2d_local(c, p, k, k_inf):
    kw = KWinners2d(c, p, local=True)
    assert (kw.k_at(7, 3), kw.k_at(7, 3, training=False)) == (k, k_inf)
    r = ref.KWinners2d(c, p, local=True)
    assert (r.k, r.k_inference) == (k, k_inf)


def test_k_inference_matches_reference_over_a_grid():
    """Every (n, percent_on, factor) on a grid gives the reference's k and k_inference."""
    mismatches = []
    for n in range(2, 80):
        for pi in range(1, 20):
            p = pi / 20
            for f in (1.25, 1.5):
                if p * f >= 1:
                    continue
                r1 = ref.KWinners(n, p, k_inference_factor=f)
                if r1.k >= 1 and (F.k_for(n, p), F.k_inference_for(n, p, f, one_d=True)) != (r1.k, r1.k_inference):
                    mismatches.append(("1d", n, p, f))
                r2 = ref.KWinners2d(n, p, k_inference_factor=f, local=True)
                if r2.k >= 1 and r2.k_inference >= 1:
                    ours = (F.k_for(n, p), F.k_inference_for(n, p, f, one_d=False))
                    if ours != (r2.k, r2.k_inference):
                        mismatches.append(("2d", n, p, f, ours, (r2.k, r2.k_inference)))
    assert mismatches == []


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_percent_on_outside_unit_interval_raises(bad):
    with pytest.raises(ValueError, match="percent_on"):
        KWinners(10, bad)
    with pytest.raises(ValueError, match="percent_on"):
        KWinners2d(4, bad)


def test_k_rounding_to_zero_raises():
    with pytest.raises(ValueError, match=r"percent_on=0\.04.*k=0"):
        KWinners(10, 0.04)
    with pytest.raises(ValueError, match="k=0"):
        KWinners2d(10, 0.04, local=True)
    with pytest.raises(ValueError, match="k=0"):
        KWinners2d(1, 0.04)(torch.randn(2, 1, 2, 2))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(k_inference_factor=0.0), "k_inference_factor"),
        (dict(boost_strength=-1.0), "boost_strength"),
        (dict(boost_strength_factor=1.5), "boost_strength_factor"),
        (dict(boost_strength_factor=0.0), "boost_strength_factor"),
        (dict(duty_cycle_period=0), "duty_cycle_period"),
    ],
)
def test_bad_settings_raise(kwargs, field):
    with pytest.raises(ValueError, match=field):
        KWinners(10, 0.3, **kwargs)
    with pytest.raises(ValueError, match=field):
        KWinners2d(4, 0.3, **kwargs)


# ----------------------------------------------------------------------------- duty cycles


def test_duty_cycle_1d_by_hand_before_and_after_period_saturates():
    kw = KWinners(4, percent_on=0.5, boost_strength=0.0, duty_cycle_period=6)  # k = 2
    # Batch 1, t = 4, p = min(6, 4) = 4: actives per unit c1 = [1, 2, 2, 1]
    b1 = t([[4, 3, 1, 0],        # units 0, 1
            [1, 5, 6, 0],        # units 1, 2
            [-1, -2, -3, -4],    # units 0, 1 win but are negative: inactive
            [0, 0, 2, 3]])       # units 2, 3
    kw(b1)
    assert int(kw.samples_seen) == 4
    assert torch.allclose(kw.duty_cycle, t([1 / 4, 2 / 4, 2 / 4, 1 / 4]), atol=1e-7)
    # Batch 2, t = 8, p = 6: d = (d * 2 + [4, 4, 0, 0]) / 6 = [3/4, 5/6, 1/6, 1/12]
    kw(t([[1, 2, 0, 0]] * 4))
    assert torch.allclose(kw.duty_cycle, t([3 / 4, 5 / 6, 1 / 6, 1 / 12]), atol=1e-7)
    # Batch 3, t = 12, p = 6: d = (d * 2 + [0, 0, 4, 4]) / 6 = [1/4, 5/18, 13/18, 25/36]
    kw(t([[0, 0, 1, 2]] * 4))
    assert torch.allclose(kw.duty_cycle, t([1 / 4, 5 / 18, 13 / 18, 25 / 36]), atol=1e-7)
    assert int(kw.samples_seen) == 12
    # Eval mode leaves duty cycles and the sample count alone.
    before = kw.duty_cycle.clone()
    kw.eval()
    kw(b1)
    assert torch.equal(kw.duty_cycle, before) and int(kw.samples_seen) == 12


def test_duty_cycle_2d_by_hand_per_channel_over_positions():
    # C=2, H=W=2, global k = round(8 * 0.5) = 4; period 3, batches of 2.
    kw = KWinners2d(2, percent_on=0.5, boost_strength=0.0, duty_cycle_period=3)
    a = t([[[1, 1], [1, 1]], [[-1, -1], [-1, -1]]])    # channel 0 all 4 positions active
    b = t([[[2, -1], [-1, -1]], [[3, 4], [5, -1]]])    # ch0 1 of 4, ch1 3 of 4 active
    # Batch 1 [a, b], t = 2, p = 2: counts = [1 + 1/4, 0 + 3/4] -> d = [0.625, 0.375]
    y = kw(torch.stack([a, b]))
    assert torch.equal(y[1], t([[[2, 0], [0, 0]], [[3, 4], [5, 0]]]))
    assert torch.allclose(kw.duty_cycle, t([0.625, 0.375]), atol=1e-7)
    # Batch 2 [b, b], t = 4, p = 3: d = (d * 1 + [0.5, 1.5]) / 3 = [0.375, 0.625]
    kw(torch.stack([b, b]))
    assert torch.allclose(kw.duty_cycle, t([0.375, 0.625]), atol=1e-7)
    # Batch 3 [a, a], t = 6, p = 3: d = (d * 1 + [2, 0]) / 3 = [0.79166.., 0.208333..]
    kw(torch.stack([a, a]))
    assert torch.allclose(kw.duty_cycle, t([2.375 / 3, 0.625 / 3]), atol=1e-7)


def test_duty_cycle_2d_local_per_channel():
    kw = KWinners2d(3, percent_on=1 / 3, boost_strength=0.0, local=True, duty_cycle_period=100)  # k = 1
    x = torch.zeros(1, 3, 1, 4)
    x[0, 0, 0, :3] = 1.0   # channel 0 wins at 3 positions
    x[0, 2, 0, 3] = 2.0    # channel 2 at one
    kw(x)
    assert torch.allclose(kw.duty_cycle, t([3 / 4, 0, 1 / 4]), atol=1e-7)


def test_update_duty_cycle_function_matches_formula():
    d = t([0.5, 0.2])
    out = F.update_duty_cycle(d, t([3, 1]), batch_size=4, samples_seen=20, period=10)
    assert torch.allclose(out, (d * 6 + t([3, 1])) / 10)
    out_t = F.update_duty_cycle(d, t([3, 1]), batch_size=4, samples_seen=torch.tensor(8), period=10)
    assert torch.allclose(out_t, (d * 4 + t([3, 1])) / 8)


# ----------------------------------------------------------------------------- boosting


def test_boost_changes_winner_set_but_not_values():
    x = t([[1.0, 0.95, 0.1, 0.2]])  # k = 1
    plain = KWinners(4, percent_on=0.25, boost_strength=0.0)
    plain.duty_cycle.copy_(t([0.9, 0.0, 0.0, 0.0]))
    assert torch.equal(plain(x), t([[1.0, 0, 0, 0]]))
    boosted = KWinners(4, percent_on=0.25, boost_strength=1.0)
    boosted.duty_cycle.copy_(t([0.9, 0.0, 0.0, 0.0]))
    # unit 0: 1.0 * exp(0.25 - 0.9) = 0.52 < unit 1: 0.95 * exp(0.25) = 1.22
    y = boosted(x)
    assert torch.equal(y, t([[0, 0.95, 0, 0]]))  # raw value, not 1.22


def test_boost_changes_winner_set_2d_and_in_eval():
    x = torch.zeros(1, 2, 1, 2)
    x[0, 0, 0, 0] = 1.0
    x[0, 1, 0, 1] = 0.9
    kw = KWinners2d(2, percent_on=0.25, boost_strength=2.0)  # n = 4, k = 1, k_inference = round(1.5) = 2
    kw.duty_cycle.copy_(t([0.8, 0.0]))
    y = kw(x)
    assert torch.equal(y, torch.where(x == 0.9, x, torch.zeros_like(x)))
    # In eval the frozen duty cycles still rank: channel 1 (boosted) first (k_inference = 1 here).
    kw2 = KWinners2d(2, percent_on=0.25, boost_strength=2.0, k_inference_factor=1.0).eval()
    kw2.duty_cycle.copy_(t([0.8, 0.0]))
    assert torch.equal(kw2(x), torch.where(x == 0.9, x, torch.zeros_like(x)))


def test_boost_factors_formula():
    d = t([0.0, 0.1, 0.5])
    assert torch.allclose(F.boost_factors(d, 0.1, 1.5), torch.exp(1.5 * (0.1 - d)))
    assert torch.equal(F.boost_factors(d, 0.1, 0.0), torch.ones(3))


def test_reference_boost_variant_differs_by_a_constant_and_ranks_the_same():
    """Reference scores x * exp(-beta d); ours x * exp(beta (k/n - d)): ratio exp(beta k/n) for all units."""
    torch.manual_seed(3)
    d, x, beta, density = torch.rand(50), torch.randn(16, 50), 1.5, 0.2
    ours = x * F.boost_factors(d, density, beta)
    theirs = ref.boost_activations(x, d, beta)
    assert torch.allclose(ours, theirs * math.exp(beta * density), rtol=1e-6)
    assert torch.equal(ours.argsort(dim=1), theirs.argsort(dim=1))


def test_update_boost_strength_decays_by_factor():
    kw = KWinners(10, 0.3, boost_strength=1.5, boost_strength_factor=0.85)
    for _ in range(3):
        kw.update_boost_strength()
    assert math.isclose(float(kw.boost_strength), 1.5 * 0.85**3, rel_tol=1e-6)


def test_update_boost_strength_reaches_all_kwinners_modules():
    model = nn.Sequential(
        nn.Sequential(KWinners2d(3, 0.5, boost_strength=2.0, boost_strength_factor=0.5)),
        nn.Flatten(),
        KWinners(12, 0.5, boost_strength=1.0, boost_strength_factor=0.9),
        nn.ModuleList([KWinners2d(3, 0.5, local=True, boost_strength=1.0, boost_strength_factor=0.8)]),
    )
    sparsity.update_boost_strength(model)
    sparsity.update_boost_strength(model)
    assert math.isclose(float(model[0][0].boost_strength), 2.0 * 0.25, rel_tol=1e-6)
    assert math.isclose(float(model[2].boost_strength), 0.81, rel_tol=1e-6)
    assert math.isclose(float(model[3][0].boost_strength), 0.64, rel_tol=1e-6)


# ----------------------------------------------------------------------------- gradients


def _expected_mask_1d(x: torch.Tensor, k: int) -> torch.Tensor:
    idx = x.topk(k, dim=1).indices
    return torch.zeros_like(x).scatter_(1, idx, 1.0)


def test_gradient_only_at_winners_1d():
    torch.manual_seed(0)
    x = torch.randn(8, 50, requires_grad=True)
    kw = KWinners(50, 0.2, boost_strength=0.0)
    y = kw(x)
    y.sum().backward()
    mask = _expected_mask_1d(x.detach(), 10)
    assert torch.equal(x.grad, mask)
    assert torch.equal(y.detach(), x.detach() * mask)


def test_gradient_only_at_winners_2d_global_and_local():
    torch.manual_seed(1)
    x = torch.randn(4, 6, 5, 5, requires_grad=True)
    y = KWinners2d(6, 0.1, boost_strength=0.0)(x)  # k = round(15.0) = 15
    y.sum().backward()
    mask = _expected_mask_1d(x.detach().flatten(1), 15).view_as(x)
    assert torch.equal(x.grad, mask)

    x.grad = None
    y = KWinners2d(6, 0.5, boost_strength=0.0, local=True)(x)  # k = 3 of 6 channels per position
    y.sum().backward()
    xl = x.detach().permute(0, 2, 3, 1).reshape(-1, 6)
    mask = _expected_mask_1d(xl, 3).view(4, 5, 5, 6).permute(0, 3, 1, 2)
    assert torch.equal(x.grad, mask)


def test_gradient_with_boosting_follows_boosted_winners():
    torch.manual_seed(2)
    kw = KWinners(20, 0.25, boost_strength=1.5)
    kw.duty_cycle.copy_(torch.rand(20))
    x = torch.randn(6, 20, requires_grad=True)
    y = kw(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y.detach() != 0).float())
    assert ((x.grad != 0).sum(1) == 5).all()


# ----------------------------------------------------------------------------- reference parity


def _pair(kind: str, break_ties: bool, **settings):
    if kind == "1d":
        n = 40
        ours = KWinners(n, 0.2, break_ties=break_ties, **settings)
        theirs = ref.KWinners(n, 0.2, break_ties=break_ties, **settings)
        shape = (8, n)
    else:
        local = kind == "2d-local"
        ours = KWinners2d(6, 0.3, local=local, break_ties=break_ties, **settings)
        theirs = ref.KWinners2d(6, 0.3, local=local, break_ties=break_ties, **settings)
        shape = (8, 6, 4, 4)
    return ours, theirs, shape


def _inputs(shape, step: int, ties: bool) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + step)
    if ties:  # few distinct values: many ties at the threshold
        return torch.randint(-3, 5, shape, generator=g).float() / 2
    return torch.randn(shape, generator=g)


@pytest.mark.parametrize("kind", ["1d", "2d-global", "2d-local"])
@pytest.mark.parametrize("break_ties", [False, True])
def test_parity_with_reference(kind, break_ties):
    settings = dict(k_inference_factor=1.5, boost_strength=1.5, boost_strength_factor=0.85, duty_cycle_period=20)
    ours, theirs, shape = _pair(kind, break_ties, **settings)
    ties = not break_ties  # with break_ties, which of a tie wins is unspecified: use distinct values
    k = ours.k if kind == "1d" else ours.k_at(4, 4)
    extra_winners = 0
    for step in range(8):
        if step == 5:  # an "epoch" boundary: decay boost strength on both
            sparsity.update_boost_strength(ours)
            theirs.apply(ref.update_boost_strength)
        x = _inputs(shape, step, ties)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(xa), theirs(xb)
        assert torch.equal(ya, yb), f"step {step}: outputs differ"
        w = torch.randn(shape, generator=torch.Generator().manual_seed(step))
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert torch.equal(xa.grad, xb.grad), f"step {step}: gradients differ"
        won = xa.grad != 0  # w has no zeros: the winners, zero-valued ones included
        rows = won.flatten(1) if kind != "2d-local" else won.permute(0, 2, 3, 1).reshape(-1, 6)
        extra_winners += int((rows.sum(1) > k).sum())
        if break_ties:
            assert (rows.sum(1) == k).all()
        assert torch.allclose(ours.duty_cycle, theirs.duty_cycle.view(-1), rtol=0, atol=1e-6), f"step {step}"
    assert int(ours.samples_seen) == theirs.learning_iterations == 64
    assert math.isclose(float(ours.boost_strength), float(theirs.boost_strength), rel_tol=1e-6)
    if ties:  # the tie inputs must really have produced ties at the threshold (> k winners)
        assert extra_winners > 0
    ours.eval()
    theirs.eval()
    for step in range(8, 10):
        x = _inputs(shape, step, ties)
        assert torch.equal(ours(x), theirs(x)), f"eval step {step}: outputs differ"
    # eval updates nothing
    assert int(ours.samples_seen) == theirs.learning_iterations == 64


def test_parity_duty_cycles_bitwise_1d():
    """The duty-cycle arithmetic is the reference's, to the bit (boosting off so ranks are raw)."""
    ours = KWinners(30, 0.3, boost_strength=0.0, duty_cycle_period=50)
    theirs = ref.KWinners(30, 0.3, boost_strength=0.0, duty_cycle_period=50)
    for step in range(12):
        x = _inputs((7, 30), step, ties=False)
        ours(x)
        theirs(x)
        assert torch.equal(ours.duty_cycle, theirs.duty_cycle), f"step {step}"


def test_parity_duty_cycles_bitwise_2d():
    ours = KWinners2d(5, 0.2, boost_strength=0.0, duty_cycle_period=30)
    theirs = ref.KWinners2d(5, 0.2, boost_strength=0.0, duty_cycle_period=30)
    for step in range(10):
        x = _inputs((7, 5, 3, 3), step, ties=False)
        ours(x)
        theirs(x)
        assert torch.equal(ours.duty_cycle, theirs.duty_cycle.view(-1)), f"step {step}"


# ----------------------------------------------------------------------------- memory formats


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().view(torch.int32)  # equal bits: signed zeros too


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize("break_ties", [False, True])
def test_channels_last_equals_contiguous_to_the_bit(local, break_ties):
    """Training runs conv nets channels-last: same winners, outputs, gradients and duty cycles as
    the contiguous layout, and the output and the input's gradient keep the input's layout."""
    settings = dict(boost_strength=1.5, duty_cycle_period=20, local=local, break_ties=break_ties)
    a, b = KWinners2d(6, 0.3, **settings), KWinners2d(6, 0.3, **settings)
    for step in range(6):
        x = _inputs((8, 6, 4, 4), step, ties=not break_ties)
        xa = x.clone().requires_grad_()
        xb = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        inner = xb * 1.0  # not a leaf: its gradient's layout is the one the layer returned
        grads = []
        inner.register_hook(grads.append)
        ya, yb = a(xa), b(inner)
        assert yb.is_contiguous(memory_format=torch.channels_last) and not yb.is_contiguous()
        assert torch.equal(_bits(ya), _bits(yb)), f"step {step}"
        w = torch.randn(8, 6, 4, 4, generator=torch.Generator().manual_seed(step))  # contiguous gradient
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert grads[0].is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(_bits(xa.grad), _bits(xb.grad)), f"step {step}"
        assert torch.equal(_bits(a.duty_cycle), _bits(b.duty_cycle)), f"step {step}"
    a.eval(), b.eval()
    x = _inputs((8, 6, 4, 4), 9, ties=not break_ties)
    assert torch.equal(_bits(a(x)), _bits(b(x.contiguous(memory_format=torch.channels_last))))


@pytest.mark.parametrize("kind", ["1d", "2d-global", "2d-local"])
def test_without_autograd_same_output_and_input_untouched(kind):
    """Without autograd the product is written into the mask's memory; the input stays as it was."""
    ours, _, shape = _pair(kind, False, boost_strength=1.5)
    ours.eval()
    x = _inputs(shape, 3, ties=False)
    keep = x.clone()
    with_grad = ours(x.clone().requires_grad_())
    with torch.inference_mode():
        y = ours(x)
    assert torch.equal(x, keep)
    assert torch.equal(_bits(y), _bits(with_grad))


# ----------------------------------------------------------------------------- state_dict


@pytest.mark.parametrize("kind", ["1d", "2d-global", "2d-local"])
def test_state_dict_round_trip_mid_training(kind):
    settings = dict(boost_strength=1.5, boost_strength_factor=0.9, duty_cycle_period=40)
    a, _, shape = _pair(kind, False, **settings)
    for step in range(3):  # 24 samples: the period (40) has not saturated
        a(_inputs(shape, step, ties=False))
    a.update_boost_strength()
    state = copy.deepcopy(a.state_dict())
    assert {"duty_cycle", "boost_strength", "samples_seen"} <= set(state)
    b, _, _ = _pair(kind, False, boost_strength=0.3, duty_cycle_period=40)  # a different start
    b.load_state_dict(state)
    for step in range(3, 9):  # crosses t = 40
        x = _inputs(shape, step, ties=False)
        assert torch.equal(a(x), b(x)), f"step {step}"
        assert torch.equal(a.duty_cycle, b.duty_cycle)
    assert int(a.samples_seen) == int(b.samples_seen) == 72
    a.eval(), b.eval()
    x = _inputs(shape, 99, ties=False)
    assert torch.equal(a(x), b(x))


def test_reference_state_dict_loses_sample_count():
    """Why samples_seen is a buffer: the reference's round trip diverges (documents the difference)."""
    a = ref.KWinners(40, 0.2, duty_cycle_period=40)
    for step in range(3):
        a(_inputs((8, 40), step, ties=False))
    b = ref.KWinners(40, 0.2, duty_cycle_period=40)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    x = _inputs((8, 40), 3, ties=False)
    a(x), b(x)
    assert not torch.allclose(a.duty_cycle, b.duty_cycle)  # b used p = 8, a used p = 32


def test_extra_repr_shows_settings():
    r = repr(KWinners(700, 100 / 700, break_ties=True))
    assert "k=100" in r and "k_inference=150" in r and "break_ties=True" in r
    r2 = repr(KWinners2d(32, 0.1, local=True))
    assert "channels=32" in r2 and "local=True" in r2


@pytest.mark.parametrize("break_ties", [False, True])
@pytest.mark.parametrize("kind", ["1d", "2d-global", "2d-local"])
def test_torch_selection_matches_numpy_path_to_the_bit(kind, break_ties):
    """The forced ``topk`` path (the one CUDA runs and an exported graph holds) picks the same
    winners as the CPU's numpy path: same outputs, same duty cycles, in training and eval. With ties
    kept (``break_ties=False``) that holds on data with ties at the k-th value too; with exactly k
    winners, which of tied units wins is each library's own choice, so those runs see no ties."""
    from sparsity.functional import _numpy_ok, torch_selection

    gen = torch.Generator().manual_seed(7)
    shape = (16, 300) if kind == "1d" else (16, 12, 6, 6)

    def make():
        if kind == "1d":
            return KWinners(n=300, percent_on=0.1, k_inference_factor=1.5, boost_strength=1.5, break_ties=break_ties)
        return KWinners2d(channels=12, percent_on=0.2, k_inference_factor=1.5, boost_strength=1.5,
                          local=kind == "2d-local", break_ties=break_ties)

    a, b = make(), make()
    probe = torch.zeros(2, 3)
    assert _numpy_ok(probe)
    with torch_selection():
        assert not _numpy_ok(probe)
    assert _numpy_ok(probe)  # the switch ends with its block
    for step in range(4):
        x = torch.randn(shape, generator=gen)
        if step % 2 and not break_ties:
            x = (x * 2).round() / 2  # many ties at the k-th value
        for mode in ("train", "eval"):
            a.train(mode == "train"), b.train(mode == "train")
            with torch.no_grad():
                ya = a(x)
                with torch_selection():
                    yb = b(x)
            assert torch.equal(ya, yb), (step, mode)
        assert torch.equal(a.duty_cycle, b.duty_cycle)
