"""The paper's networks: presets against paper.md's tables (hard-coded), built modules against the
spec's summary, validation messages, serialization and seeding."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

import sparsity
from sparsity import (
    ConvLayer,
    KWinners,
    KWinners2d,
    KWinnersSettings,
    LinearLayer,
    NetworkSpec,
    SparseWeights,
    SparseWeights2d,
    build_network,
    preset,
    preset_names,
)


@dataclasses.dataclass(frozen=True)
class Conv:
    channels: int
    out: tuple[int, int, int]  # pooled (C, H, W)
    k: int | None = None  # None: ReLU
    k_inf: int | None = None


@dataclasses.dataclass(frozen=True)
class Hidden:
    units: int
    k: int | None
    k_inf: int | None
    density: float
    fan_in: int
    nnz: int  # nonzero weights per unit = round(density * fan_in)
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class Expect:
    conv: tuple[Conv, ...]
    hidden: Hidden
    params: int
    nonzero_params: int  # params - units * (fan_in - nnz) of the hidden layer


# MNIST: 1x28x28 -> conv5 24x24 -> pool 12x12 -> conv5 8x8 -> pool 4x4.  10 classes.
M_DENSE1 = Conv(30, (30, 12, 12))
M_DENSE2 = (Conv(30, (30, 12, 12)), Conv(30, (30, 4, 4)))
# Sparse CNN-2 convs: k=400 of 32*12*12=4608 (k_inf round(600.0)=600), k=300 of 64*4*4=1024 (450).
M_SPARSE2 = (Conv(32, (32, 12, 12), 400, 600), Conv(64, (64, 4, 4), 300, 450))
# GSC: 1x32x32 -> conv5 28x28 -> pool 14x14 -> conv5 10x10 -> pool 5x5.  12 classes.
G_DENSE2 = (Conv(64, (64, 14, 14)), Conv(64, (64, 5, 5)))
# k=1200 of 64*14*14=12544 (k_inf 1800), k=200 of 64*5*5=1600 (k_inf 300).
G_SPARSE2 = (Conv(64, (64, 14, 14), 1200, 1800), Conv(64, (64, 5, 5), 200, 300))

# Parameter counts worked by hand (weights + biases; BatchNorm(affine=False) has none):
#   MNIST conv(30 of 1)  = 30*1*25 + 30   = 780        conv(30 of 30) = 30*30*25 + 30 = 22530
#   MNIST conv(32 of 1)  = 32*1*25 + 32   = 832        conv(64 of 32) = 64*32*25 + 64 = 51264
#   GSC   conv(64 of 1)  = 64*1*25 + 64   = 1664       conv(64 of 64) = 64*64*25 + 64 = 102464
#   dense-cnn1:   780 + (4320*1000 + 1000) + (1000*10 + 10)              = 4331790
#   dense-cnn2:   780 + 22530 + (480*1000 + 1000) + 10010                = 514320
#   sparse-cnn1:  780 + (4320*150 + 150) + (150*10 + 10)                 = 650440
#   sparse-cnn2:  832 + 51264 + (1024*700 + 700) + (700*10 + 10)         = 776606
#   dense-cnn2-sp3: 780 + 22530 + (480*700 + 700) + 7010                 = 367020
#   sparse-cnn2-d3 / -dsw: 832 + 51264 + (1024*1000 + 1000) + 10010      = 1087106
#   sparse-cnn2-w1: as sparse-cnn2                                        = 776606
#   GSC dense/sparse cnn2: 1664 + 102464 + (1600*1000 + 1000) + (1000*12 + 12) = 1717140
#   GSC super-sparse: 1664 + 102464 + (1600*1500 + 1500) + (1500*12 + 12)      = 2523640
# Nonzero-able params subtract the hidden layer's masked weights, units * (fan_in - nnz):
#   sparse-cnn1: 150 * (4320 - 1296) = 453600 -> 196840
#   sparse-cnn2: 700 * (1024 - 307)  = 501900 -> 274706
#   sp3:         700 * (480 - 144)   = 235200 -> 131820
#   dsw:        1000 * (1024 - 307)  = 717000 -> 370106
#   GSC sparse: 1000 * (1600 - 640)  = 960000 -> 757140
#   GSC super:  1500 * (1600 - 160)  = 2160000 -> 363640
PAPER: dict[tuple[str, str], Expect] = {
    ("mnist", "dense-cnn1"): Expect((M_DENSE1,), Hidden(1000, None, None, 1.0, 4320, 4320), 4331790, 4331790),
    ("mnist", "dense-cnn2"): Expect(M_DENSE2, Hidden(1000, None, None, 1.0, 480, 480), 514320, 514320),
    # Sparse CNN-1: k=400 of 30*12*12=4320 (k_inf 600); hidden 150, k=50 (k_inf int(75.0)=75), 0.3 -> round(1296.0)
    ("mnist", "sparse-cnn1"): Expect(
        (Conv(30, (30, 12, 12), 400, 600),), Hidden(150, 50, 75, 0.3, 4320, 1296), 650440, 196840
    ),
    # hidden 700, k=100 (k_inf 150), density 0.3 of 1024 -> round(307.2) = 307
    ("mnist", "sparse-cnn2"): Expect(M_SPARSE2, Hidden(700, 100, 150, 0.3, 1024, 307), 776606, 274706),
    # SP3: dense convs (30, 30 per the configuration), hidden 700 k=100, 0.3 of 480 -> 144
    ("mnist", "dense-cnn2-sp3"): Expect(M_DENSE2, Hidden(700, 100, 150, 0.3, 480, 144), 367020, 131820),
    ("mnist", "sparse-cnn2-d3"): Expect(M_SPARSE2, Hidden(1000, None, None, 1.0, 1024, 1024), 1087106, 1087106),
    ("mnist", "sparse-cnn2-w1"): Expect(M_SPARSE2, Hidden(700, 100, 150, 1.0, 1024, 1024), 776606, 776606),
    ("mnist", "sparse-cnn2-dsw"): Expect(M_SPARSE2, Hidden(1000, None, None, 0.3, 1024, 307), 1087106, 370106),
    ("gsc", "dense-cnn2"): Expect(G_DENSE2, Hidden(1000, None, None, 1.0, 1600, 1600), 1717140, 1717140),
    ("gsc", "dense-cnn2-dropout"): Expect(
        G_DENSE2, Hidden(1000, None, None, 1.0, 1600, 1600, dropout=0.5), 1717140, 1717140
    ),
    # hidden 1000, k=100, density 0.4 of 1600 -> 640
    ("gsc", "sparse-cnn2"): Expect(G_SPARSE2, Hidden(1000, 100, 150, 0.4, 1600, 640), 1717140, 757140),
    # hidden 1500, k=100, density 0.1 of 1600 -> 160
    ("gsc", "super-sparse-cnn2"): Expect(G_SPARSE2, Hidden(1500, 100, 150, 0.1, 1600, 160), 2523640, 363640),
}
CLASSES = {"mnist": 10, "gsc": 12}
INPUT = {"mnist": (1, 28, 28), "gsc": (1, 32, 32)}
IDS = [f"{d}/{n}" for d, n in PAPER]


def test_every_paper_network_has_a_preset():
    for dataset in ("mnist", "gsc"):
        names = set(preset_names(dataset))
        assert {n for d, n in PAPER if d == dataset} <= names
    assert len([1 for d, _ in PAPER if d == "mnist"]) == 8
    assert len([1 for d, _ in PAPER if d == "gsc"]) == 4


@pytest.mark.parametrize("dataset, name", list(PAPER), ids=IDS)
def test_preset_summary_matches_paper(dataset, name):
    spec = preset(name, dataset)
    exp = PAPER[(dataset, name)]
    assert spec.input_shape == INPUT[dataset] and spec.num_classes == CLASSES[dataset]
    assert spec.batch_norm is (dataset == "gsc")
    summaries = spec.layer_summaries()
    assert [s.name for s in summaries] == [f"conv[{i}]" for i in range(len(exp.conv))] + ["linear[0]", "output"]
    for s, c in zip(summaries, exp.conv):
        assert s.out_shape == c.out
        assert (s.k, s.k_inference) == (c.k, c.k_inf)
        assert s.activation == ("relu" if c.k is None else "kwinners2d")
        assert s.units == math.prod(c.out)
        assert s.weight_density == 1.0  # conv weights dense in every paper net
        assert s.nonzero_weights == s.weights
    h = summaries[len(exp.conv)]
    e = exp.hidden
    assert h.out_shape == (e.units,)
    assert (h.k, h.k_inference) == (e.k, e.k_inf)
    assert h.activation == ("relu" if e.k is None else "kwinners")
    assert h.weight_density == e.density
    assert h.weights == e.units * e.fan_in
    assert h.nonzero_weights == e.units * e.nnz
    assert spec.linear[0].dropout == e.dropout
    assert summaries[-1].out_shape == (CLASSES[dataset],)
    assert spec.num_params == exp.params
    assert spec.num_nonzero_params == exp.nonzero_params


def _block_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Size]:
    shapes: dict[str, torch.Size] = {}
    hooks = []
    for name, mod in list(model.features.named_children()) + list(model.hidden.named_children()):
        hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)))
    out = model(x)
    for h in hooks:
        h.remove()
    shapes["output"] = out.shape
    return shapes


@pytest.mark.parametrize("dataset, name", list(PAPER), ids=IDS)
def test_built_network_matches_paper(dataset, name):
    spec = preset(name, dataset)
    exp = PAPER[(dataset, name)]
    model = build_network(spec, seed=0)

    # parameters
    assert sum(p.numel() for p in model.parameters()) == exp.params
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert sum(int((w != 0).sum()) for w in weights) == sum(s.nonzero_weights for s in spec.layer_summaries())

    # blocks: conv (BN) pool act
    assert len(model.features) == len(exp.conv)
    for i, c in enumerate(exp.conv):
        block = model.features[i]
        assert isinstance(block.conv, nn.Conv2d) and block.conv.out_channels == c.channels
        assert block.conv.kernel_size == (5, 5) and block.conv.padding == (0, 0) and block.conv.stride == (1, 1)
        assert isinstance(block.pool, nn.MaxPool2d) and block.pool.kernel_size == 2
        if dataset == "gsc":
            assert isinstance(block.bn, nn.BatchNorm2d) and not block.bn.affine
        else:
            assert not hasattr(block, "bn")
        if c.k is None:
            assert isinstance(block.act, nn.ReLU)
        else:
            assert isinstance(block.act, KWinners2d) and not block.act.local
            h, w = c.out[1:]
            assert (block.act.k_at(h, w), block.act.k_at(h, w, training=False)) == (c.k, c.k_inf)
            assert math.isclose(float(block.act.boost_strength), 1.5)
    e = exp.hidden
    hb = model.hidden[0]
    lin = hb.linear
    if e.density < 1:
        assert isinstance(lin, SparseWeights)
        assert ((lin.weight != 0).sum(1) == e.nnz).all()
        assert ((lin.weight_mask).sum(1) == e.nnz).all()
    else:
        assert isinstance(lin, nn.Linear)
    assert lin.weight.shape == (e.units, e.fan_in)
    if e.k is None:
        assert isinstance(hb.act, nn.ReLU)
    else:
        assert isinstance(hb.act, KWinners) and (hb.act.k, hb.act.k_inference) == (e.k, e.k_inf)
    if e.dropout:
        assert isinstance(hb.dropout, nn.Dropout) and hb.dropout.p == e.dropout
    else:
        assert not hasattr(hb, "dropout")
    assert isinstance(hb.bn, nn.BatchNorm1d) if dataset == "gsc" else not hasattr(hb, "bn")
    assert model.output.out_features == CLASSES[dataset]

    # forward: shapes of every block, (B, classes) out, in train and eval
    x = torch.randn(3, *INPUT[dataset], generator=torch.Generator().manual_seed(0))
    shapes = _block_outputs(model, x)
    for i, c in enumerate(exp.conv):
        assert tuple(shapes[f"conv{i + 1}"]) == (3, *c.out)
    assert tuple(shapes["linear1"]) == (3, e.units)
    assert tuple(shapes["output"]) == (3, CLASSES[dataset])
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, CLASSES[dataset]) and torch.isfinite(out).all()


def test_kwinners_really_sparsify_a_forward_pass():
    model = build_network(preset("sparse-cnn2"), seed=0)
    acts: dict[str, torch.Tensor] = {}
    model.features[0].act.register_forward_hook(lambda m, i, o: acts.__setitem__("c1", o))
    model.features[1].act.register_forward_hook(lambda m, i, o: acts.__setitem__("c2", o))
    model.hidden[0].act.register_forward_hook(lambda m, i, o: acts.__setitem__("h", o))
    model(torch.randn(4, 1, 28, 28))
    # Winners may tie or be zero, but never more than k nonzero (continuous inputs: exactly <= k).
    assert ((acts["c1"] != 0).flatten(1).sum(1) <= 400).all()
    assert ((acts["c2"] != 0).flatten(1).sum(1) <= 300).all()
    assert ((acts["h"] != 0).sum(1) <= 100).all()
    assert ((acts["c1"] != 0).flatten(1).sum(1) >= 350).all()


def test_mlp_presets_build():
    for dataset in ("mnist", "gsc"):
        for name in ("dense-mlp", "sparse-mlp"):
            spec = preset(name, dataset)
            model = build_network(spec)
            n_in = math.prod(INPUT[dataset])
            assert model(torch.randn(2, *INPUT[dataset])).shape == (2, CLASSES[dataset])
            assert sum(p.numel() for p in model.parameters()) == spec.num_params
            # two hidden layers of 500: n_in*500+500 + 500*500+500 + 500*classes+classes
            assert spec.num_params == n_in * 500 + 500 + 500 * 500 + 500 + 500 * CLASSES[dataset] + CLASSES[dataset]


def test_dense_comparison_by_replace():
    spec = preset("sparse-cnn2")
    dense = dataclasses.replace(
        spec,
        conv=tuple(dataclasses.replace(c, percent_on=1.0, weight_density=1.0) for c in spec.conv),
        linear=tuple(dataclasses.replace(l, percent_on=1.0, weight_density=1.0) for l in spec.linear),
    )
    assert dense.is_dense and not spec.is_dense
    assert dense.num_params == spec.num_params == 776606
    assert dense.num_nonzero_params == 776606
    model = build_network(dense)
    assert not any(isinstance(m, (KWinners, KWinners2d, SparseWeights, SparseWeights2d)) for m in model.modules())
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3


def test_update_boost_strength_reaches_every_layer_of_a_built_net():
    model = build_network(preset("sparse-cnn2"))
    sparsity.update_boost_strength(model)
    kws = [m for m in model.modules() if isinstance(m, (KWinners, KWinners2d))]
    assert len(kws) == 3
    for m in kws:
        assert math.isclose(float(m.boost_strength), 1.5 * 0.85, rel_tol=1e-6)


def test_rezero_after_training_steps_keeps_summary_counts():
    spec = preset("sparse-cnn1")
    model = build_network(spec, seed=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
        loss.backward()
        opt.step()
        sparsity.rezero_weights(model)
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert sum(int((w != 0).sum()) for w in weights) == sum(s.nonzero_weights for s in spec.layer_summaries())


# ----------------------------------------------------------------------------- seeding


def test_same_seed_same_network_different_seed_different():
    spec = preset("sparse-cnn2")
    a, b, c = build_network(spec, seed=5), build_network(spec, seed=5), build_network(spec, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() == sc.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    mask_key = "hidden.linear1.linear.weight_mask"
    assert mask_key in sa and sa[mask_key].dtype == torch.bool
    assert not torch.equal(sa[mask_key], sc[mask_key])
    assert not torch.equal(sa["features.conv1.conv.weight"], sc["features.conv1.conv.weight"])
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(a(x), b(x))
    assert not torch.allclose(a(x), c(x))


def test_seed_independent_of_global_rng():
    spec = preset("sparse-cnn1")
    torch.manual_seed(0)
    a = build_network(spec, seed=1)
    torch.manual_seed(123)
    torch.rand(100)
    b = build_network(spec, seed=1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.parametrize("name", ["dense-cnn2", "sparse-cnn2", "sparse-cnn1"])
def test_init_is_pytorch_default_bounds_over_the_full_fan_in(name):
    """As the paper's configuration ran (``normalize_weights`` off): PyTorch's default bounds over
    the whole fan-in, sparse layers included (their nonzero weights are not rescaled to the
    nonzero fan-in, which would widen the bound by 1/sqrt(density))."""
    model = build_network(preset(name), seed=0)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            bound = 1 / math.sqrt(m.weight[0].numel())
            assert m.weight.abs().max() <= bound and m.weight.abs().max() > 0.9 * bound
            assert m.bias.abs().max() <= bound


# ----------------------------------------------------------------------------- validation


def _spec(conv=(), linear=(LinearLayer(20),), input_shape=(1, 28, 28), **kw) -> NetworkSpec:
    return NetworkSpec(input_shape, 10, conv=conv, linear=linear, **kw)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: _spec(conv=(ConvLayer(8, percent_on=1.5),)), r"conv\[0\]\.percent_on=1\.5.*\(0, 1\]"),
        (lambda: _spec(conv=(ConvLayer(8, percent_on=0.0),)), r"conv\[0\]\.percent_on=0\.0.*\(0, 1\]"),
        (lambda: _spec(linear=(LinearLayer(20, percent_on=-0.1),)), r"linear\[0\]\.percent_on=-0\.1.*\(0, 1\]"),
        # k rounds to 0: 10 * 0.01 = 0.1
        (lambda: _spec(linear=(LinearLayer(10, percent_on=0.01),)), r"linear\[0\]\.percent_on=0\.01.*k=0"),
        # 2-D local: round(4 * 0.1) = 0
        (lambda: _spec(conv=(ConvLayer(4, percent_on=0.1, local=True),)), r"conv\[0\]\.percent_on=0\.1.*k=0"),
        (lambda: _spec(linear=(LinearLayer(20, weight_density=0.0),)), r"linear\[0\]\.weight_density=0\.0.*\(0, 1\]"),
        (lambda: _spec(linear=(LinearLayer(20, weight_density=1.2),)), r"linear\[0\]\.weight_density=1\.2"),
        (lambda: _spec(conv=(ConvLayer(8, weight_density=2.0),)), r"conv\[0\]\.weight_density=2\.0"),
        # density rounds to 0 nonzero: fan_in 16 (1x4x4 input), 0.02 * 16 = 0.32
        (
            lambda: _spec(linear=(LinearLayer(20, weight_density=0.02),), input_shape=(1, 4, 4)),
            r"linear\[0\]\.weight_density=0\.02.*fan_in=16",
        ),
        # 8x8 -> conv5 4x4 -> pool 2x2 -> conv5 cannot fit
        (
            lambda: _spec(conv=(ConvLayer(4), ConvLayer(4)), input_shape=(1, 8, 8)),
            r"conv\[1\]\.kernel_size=5.*does not fit.*2x2",
        ),
        (lambda: _spec(conv=(ConvLayer(4, kernel_size=30),)), r"conv\[0\]\.kernel_size=30.*does not fit"),
        (lambda: _spec(linear=(LinearLayer(20, dropout=1.0),)), r"linear\[0\]\.dropout=1\.0"),
        (lambda: _spec(linear=(LinearLayer(0),)), r"linear\[0\]\.units=0"),
        (lambda: NetworkSpec((1, 28, 28), 1), r"num_classes=1"),
        (lambda: KWinnersSettings(boost_strength=-1.0), r"kwinners\.boost_strength=-1\.0"),
        (lambda: KWinnersSettings(boost_strength_factor=0.0), r"kwinners\.boost_strength_factor=0\.0"),
        (lambda: KWinnersSettings(duty_cycle_period=0), r"kwinners\.duty_cycle_period=0"),
        (lambda: KWinnersSettings(k_inference_factor=0.0), r"kwinners\.k_inference_factor=0\.0"),
        (lambda: preset("nope"), r"preset='nope'.*sparse-cnn2"),
        (lambda: preset("sparse-cnn2", "cifar"), r"dataset='cifar'"),
    ],
)
def test_bad_settings_raise_value_error_naming_field_value_and_rule(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_from_dict_rejects_unknown_keys():
    good = preset("sparse-cnn2").to_dict()
    with pytest.raises(ValueError, match=r"network.*'foo'"):
        NetworkSpec.from_dict({**good, "foo": 1})
    bad_conv = dict(good)
    bad_conv["conv"] = [dict(good["conv"][0], chanels=3), good["conv"][1]]
    with pytest.raises(ValueError, match=r"conv\[0\].*'chanels'"):
        NetworkSpec.from_dict(bad_conv)
    bad_lin = dict(good, linear=[dict(good["linear"][0], density=0.3)])
    with pytest.raises(ValueError, match=r"linear\[0\].*'density'"):
        NetworkSpec.from_dict(bad_lin)
    bad_kw = dict(good, kwinners=dict(good["kwinners"], boost=1.0))
    with pytest.raises(ValueError, match=r"kwinners.*'boost'"):
        NetworkSpec.from_dict(bad_kw)
    # from_dict validates values too
    with pytest.raises(ValueError, match=r"linear\[0\]\.percent_on=2"):
        NetworkSpec.from_dict(dict(good, linear=[dict(good["linear"][0], percent_on=2)]))


@pytest.mark.parametrize("dataset, name", list(PAPER), ids=IDS)
def test_to_dict_from_dict_round_trip(dataset, name):
    spec = preset(name, dataset)
    back = NetworkSpec.from_dict(spec.to_dict())
    assert back == spec
    assert back.layer_summaries() == spec.layer_summaries()
