"""Sparse weights: exact nonzero counts per output unit, before and after optimizer steps,
the mask buffer, validation, and seeding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sparsity
from sparsity import SparseWeights, SparseWeights2d
from sparsity.sparse_weights import nonzero_per_unit, random_mask

from benchmarks import reference_nupic as ref


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# (factory, density, expected nonzero per output unit)
CASES = [
    pytest.param(lambda: nn.Linear(100, 30), 0.3, 30, id="linear-100-0.3"),            # round(30.0)
    pytest.param(lambda: nn.Linear(1024, 20), 0.3, 307, id="linear-1024-0.3"),         # round(307.2)
    pytest.param(lambda: nn.Linear(10, 7), 0.25, 2, id="linear-half-to-even"),         # round(2.5) = 2
    pytest.param(lambda: nn.Linear(10, 7), 0.75, 8, id="linear-half-to-even-up"),      # round(7.5) = 8
    pytest.param(lambda: nn.Conv2d(4, 6, 3), 0.25, 9, id="conv-4x3x3"),                 # 0.25 * 36
    pytest.param(lambda: nn.Conv2d(3, 8, 5), 0.1, 8, id="conv-3x5x5"),                  # round(7.5) = 8
    pytest.param(lambda: nn.Conv2d(4, 6, 3, groups=2), 0.5, 9, id="conv-groups2"),      # fan_in 2*3*3 = 18
    pytest.param(lambda: nn.Conv2d(6, 4, (3, 2), groups=2), 1 / 3, 6, id="conv-groups2-rect"),  # 3*3*2 = 18
]


def _wrap(module: nn.Module, density: float, generator=None):
    cls = SparseWeights if isinstance(module, nn.Linear) else SparseWeights2d
    return cls(module, density, generator)


def _nonzero_per_unit(w: torch.Tensor) -> torch.Tensor:
    return (w.detach().reshape(w.shape[0], -1) != 0).sum(dim=1)


@pytest.mark.parametrize("factory, density, nnz", CASES)
def test_exact_nonzero_per_unit_after_construction(factory, density, nnz):
    sw = _wrap(factory(), density, _gen(0))
    assert sw.nonzero_per_unit == nnz
    assert sw.weight_mask.dtype == torch.bool
    assert "weight_mask" in dict(sw.named_buffers())
    assert "weight_mask" in sw.state_dict()
    assert sw.weight_mask.shape == sw.weight.shape
    assert (sw.weight_mask.reshape(sw.weight.shape[0], -1).sum(1) == nnz).all()
    assert (_nonzero_per_unit(sw.weight) == nnz).all()
    assert torch.equal(sw.weight != 0, sw.weight_mask)  # nonzero exactly where the mask allows


@pytest.mark.parametrize("factory, density, nnz", CASES)
def test_exact_nonzero_after_sgd_momentum_weight_decay_and_rezero(factory, density, nnz):
    torch.manual_seed(0)
    sw = _wrap(factory(), density, _gen(1))
    model = nn.Sequential(sw)
    mask = sw.weight_mask.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    in_shape = (5, sw.weight.shape[1]) if isinstance(sw.module, nn.Linear) else (5, sw.module.in_channels, 7, 7)
    for step in range(4):
        opt.zero_grad()
        model(torch.randn(in_shape)).pow(2).mean().backward()
        opt.step()
        if step == 0:
            # The optimizer really moves masked weights (otherwise this test proves nothing).
            assert (_nonzero_per_unit(sw.weight) > nnz).any()
        sparsity.rezero_weights(model)
        assert (_nonzero_per_unit(sw.weight) == nnz).all()
        assert torch.equal(sw.weight != 0, mask)
    assert torch.equal(sw.weight_mask, mask)  # the mask never changes


def test_density_one_is_dense():
    sw = SparseWeights(nn.Linear(12, 5), 1.0)
    assert sw.nonzero_per_unit == 12 and sw.weight_mask.all()
    assert (sw.weight != 0).all()


def test_forward_is_the_wrapped_modules():
    lin = nn.Linear(20, 4)
    sw = SparseWeights(lin, 0.5, _gen(3))
    x = torch.randn(3, 20)
    assert torch.equal(sw(x), lin(x))
    assert sw.weight is lin.weight and sw.bias is lin.bias
    conv = nn.Conv2d(2, 3, 3)
    sw2 = SparseWeights2d(conv, 0.5, _gen(3))
    x2 = torch.randn(1, 2, 5, 5)
    assert torch.equal(sw2(x2), conv(x2))


@pytest.mark.parametrize("bad", [0.0, -0.2, 1.01, 2.0, float("nan")])
def test_density_outside_unit_interval_raises(bad):
    with pytest.raises(ValueError, match="weight_density"):
        SparseWeights(nn.Linear(10, 3), bad)
    with pytest.raises(ValueError, match="weight_density"):
        SparseWeights2d(nn.Conv2d(2, 3, 3), bad)


def test_density_rounding_to_zero_raises():
    with pytest.raises(ValueError, match=r"weight_density=0\.04.*fan_in=10"):
        SparseWeights(nn.Linear(10, 3), 0.04)  # round(0.4) = 0
    with pytest.raises(ValueError, match="weight_density"):
        SparseWeights2d(nn.Conv2d(1, 3, 2), 0.1)  # fan_in 4: round(0.4) = 0
    with pytest.raises(ValueError, match="weight_density"):
        nonzero_per_unit(0.05, 10)  # round(0.5) = 0 (half to even)


def test_wrong_module_type_raises():
    with pytest.raises(TypeError):
        SparseWeights(nn.Conv2d(2, 3, 3), 0.5)
    with pytest.raises(TypeError):
        SparseWeights2d(nn.Linear(3, 3), 0.5)


def test_same_generator_seed_same_mask_different_seed_different():
    a = SparseWeights(nn.Linear(200, 50), 0.3, _gen(7))
    b = SparseWeights(nn.Linear(200, 50), 0.3, _gen(7))
    c = SparseWeights(nn.Linear(200, 50), 0.3, _gen(8))
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert not torch.equal(a.weight_mask, c.weight_mask)
    d = SparseWeights2d(nn.Conv2d(8, 16, 3, groups=2), 0.3, sparsity.generator(1, "masks"))
    e = SparseWeights2d(nn.Conv2d(8, 16, 3, groups=2), 0.3, sparsity.generator(1, "masks"))
    f = SparseWeights2d(nn.Conv2d(8, 16, 3, groups=2), 0.3, sparsity.generator(2, "masks"))
    assert torch.equal(d.weight_mask, e.weight_mask)
    assert not torch.equal(d.weight_mask, f.weight_mask)


def test_random_mask_rows_are_uniformish_and_exact():
    m = random_mask(2000, 10, 3, _gen(0))
    assert (m.sum(1) == 3).all()
    freq = m.float().mean(0)  # each position kept with probability 0.3
    assert torch.allclose(freq, torch.full((10,), 0.3), atol=0.05)
    # Rows differ (not one mask repeated).
    assert len({tuple(r.tolist()) for r in m[:50]}) > 10


def test_state_dict_round_trip_restores_mask():
    a = SparseWeights(nn.Linear(30, 6), 0.3, _gen(1))
    b = SparseWeights(nn.Linear(30, 6), 0.3, _gen(2))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert b.weight_mask.dtype == torch.bool
    b.module.weight.data.fill_(1.0)
    b.rezero_weights()
    assert torch.equal(b.weight != 0, a.weight_mask)


def test_rezero_reaches_nested_modules_only_sparse_ones():
    dense = nn.Linear(8, 8)
    model = nn.Sequential(
        nn.Sequential(SparseWeights2d(nn.Conv2d(1, 4, 3), 0.5, _gen(0)), nn.ReLU()),
        nn.ModuleList([SparseWeights(nn.Linear(10, 8), 0.3, _gen(1))]),
        dense,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    sparsity.rezero_weights(model)
    assert (_nonzero_per_unit(model[0][0].weight) == 4).all()  # round(0.5 * 9) = round(4.5) = 4
    assert (_nonzero_per_unit(model[1][0].weight) == 3).all()
    assert (dense.weight == 1).all()
    assert len(sparsity.sparse_weight_modules(model)) == 2


def test_counts_agree_with_reference_where_rounding_is_unambiguous():
    """Reference: sparsity = 1 - density, keeps round((1 - sparsity) * fan_in) per unit."""
    for fan_in, density in [(100, 0.3), (1024, 0.3), (1600, 0.4), (1600, 0.1), (4320, 0.3), (480, 0.3)]:
        lin = nn.Linear(fan_in, 4)
        r = ref.SparseWeights(lin, sparsity=1 - density)
        ours = SparseWeights(nn.Linear(fan_in, 4), density, _gen(0))
        assert (_nonzero_per_unit(r.weight) == ours.nonzero_per_unit).all(), (fan_in, density)
        assert r.zero_mask.dtype == torch.float16 and ours.weight_mask.dtype == torch.bool
        # The masks mean opposite things: reference True = forced zero, ours True = may be nonzero.
        assert int((~r.zero_mask.bool()).sum(1)[0]) == int(ours.weight_mask.sum(1)[0])
