"""The module a `NetworkSpec` describes, and the builder that makes it.

The description itself (`NetworkSpec` and its layers) lives in `sparsity.network_spec`, which
needs no torch; its names are re-exported here.

Block order (the authors' ``SparseNet``):
  conv:   Conv2d -> BatchNorm2d(affine=False)? -> MaxPool2d -> KWinners2d (or ReLU)
  linear: Linear (sparse weights if density < 1) -> BatchNorm1d(affine=False)? -> Dropout? -> KWinners (or ReLU)
  output: Linear -> logits
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .kwinners import KWinners, KWinners2d
from .network_spec import ConvLayer, KWinnersSettings, LayerSummary, LinearLayer, NetworkSpec
from .seeding import generator as make_generator
from .sparse_weights import SparseWeights, SparseWeights2d

__all__ = [
    "KWinnersSettings",
    "ConvLayer",
    "LinearLayer",
    "NetworkSpec",
    "LayerSummary",
    "SparseNet",
    "build_network",
]


class SparseNet(nn.Module):
    """The network a `NetworkSpec` describes: ``features`` (conv blocks), ``hidden``, ``output``."""

    def __init__(self, spec: NetworkSpec, features: nn.Sequential, hidden: nn.Sequential, output: nn.Linear):
        super().__init__()
        self.spec = spec
        self.features = features
        self.hidden = hidden
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.flatten(1)
        x = self.hidden(x)
        return self.output(x)

    def extra_repr(self) -> str:
        return f"name={self.spec.name!r}"


@torch.no_grad()
def _init_(module: nn.Linear | nn.Conv2d, g: torch.Generator) -> None:
    """PyTorch's default init (kaiming-uniform, a=sqrt(5)), drawn from ``g``. Sparse layers use the
    full fan-in too, as the paper's configurations do (the reference's `normalize_sparse_weights`,
    which rescales to the nonzero fan-in, is off there)."""
    w = module.weight
    fan_in = w[0].numel()
    bound = 1.0 / math.sqrt(fan_in)  # = gain(leaky_relu, sqrt(5)) * sqrt(3 / fan_in)
    w.copy_(torch.empty(w.shape).uniform_(-bound, bound, generator=g))
    if module.bias is not None:
        module.bias.copy_(torch.empty(module.bias.shape).uniform_(-bound, bound, generator=g))


def build_network(
    spec: NetworkSpec,
    seed: int = 0,
    *,
    init_generator: torch.Generator | None = None,
    mask_generator: torch.Generator | None = None,
) -> SparseNet:
    """Build the module ``spec`` describes. Weights and masks come from their own generators,
    derived from ``seed`` unless given, so the same seed gives the same network on the CPU."""
    g_init = init_generator or make_generator(seed, "init")
    g_mask = mask_generator or make_generator(seed, "masks")
    kw = spec.kwinners
    kw_args = dict(
        k_inference_factor=kw.k_inference_factor,
        boost_strength=kw.boost_strength,
        boost_strength_factor=kw.boost_strength_factor,
        duty_cycle_period=kw.duty_cycle_period,
        break_ties=kw.break_ties,
    )
    features = nn.Sequential()
    c = spec.input_shape[0]
    for i, layer in enumerate(spec.conv):
        conv = nn.Conv2d(c, layer.channels, layer.kernel_size, stride=layer.stride, padding=layer.padding)
        _init_(conv, g_init)
        block = nn.Sequential()
        block.add_module("conv", conv if layer.weight_density >= 1.0 else SparseWeights2d(conv, layer.weight_density, g_mask))
        if spec.batch_norm:
            block.add_module("bn", nn.BatchNorm2d(layer.channels, affine=False))
        if layer.pool > 1:
            block.add_module("pool", nn.MaxPool2d(layer.pool))
        if layer.percent_on < 1.0:
            block.add_module("act", KWinners2d(layer.channels, layer.percent_on, local=layer.local, **kw_args))
        else:
            block.add_module("act", nn.ReLU())
        features.add_module(f"conv{i + 1}", block)
        c = layer.channels
    summaries = spec.layer_summaries()
    n_in = math.prod(summaries[len(spec.conv) - 1].out_shape) if spec.conv else math.prod(spec.input_shape)
    hidden = nn.Sequential()
    for i, layer in enumerate(spec.linear):
        lin = nn.Linear(n_in, layer.units)
        _init_(lin, g_init)
        block = nn.Sequential()
        block.add_module("linear", lin if layer.weight_density >= 1.0 else SparseWeights(lin, layer.weight_density, g_mask))
        if spec.batch_norm:
            block.add_module("bn", nn.BatchNorm1d(layer.units, affine=False))
        if layer.dropout > 0:
            block.add_module("dropout", nn.Dropout(layer.dropout))
        if layer.percent_on < 1.0:
            block.add_module("act", KWinners(layer.units, layer.percent_on, **kw_args))
        else:
            block.add_module("act", nn.ReLU())
        hidden.add_module(f"linear{i + 1}", block)
        n_in = layer.units
    output = nn.Linear(n_in, spec.num_classes)
    _init_(output, g_init)
    return SparseNet(spec, features, hidden, output)
