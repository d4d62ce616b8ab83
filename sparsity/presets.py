"""The paper's networks (Tables 1-3 and the authors' configuration) as `NetworkSpec` presets.

The configuration gives k as a count of the pooled C*H*W (or hidden units); a preset stores
``percent_on = k / n``, which rounds back to exactly that count. MNIST nets have no batch norm;
GSC nets use BatchNorm(affine=False). Conv weights are dense in every paper net.
"""

from __future__ import annotations

from typing import Callable

from .facts import dataset_facts
from .network_spec import ConvLayer, KWinnersSettings, LinearLayer, NetworkSpec

__all__ = ["preset", "preset_names"]


def _shape(dataset: str) -> tuple[tuple[int, int, int], int]:
    """(input shape, classes) of ``dataset`` under its default class set (`sparsity.facts`)."""
    facts = dataset_facts(dataset)
    return facts.input_shape, facts.num_classes()


MNIST_KW = KWinnersSettings(k_inference_factor=1.5, boost_strength=1.5, boost_strength_factor=0.85)
GSC_KW = KWinnersSettings(k_inference_factor=1.5, boost_strength=1.5, boost_strength_factor=0.9)


def _conv(channels: int, k: int | None = None, n: int | None = None) -> ConvLayer:
    """A 5x5 conv + 2x2 max-pool block with k winners of the pooled ``n`` = C*H*W (None: ReLU)."""
    return ConvLayer(channels=channels, kernel_size=5, pool=2, percent_on=1.0 if k is None else k / n)


def _hidden(units: int, k: int | None = None, density: float = 1.0, dropout: float = 0.0) -> LinearLayer:
    return LinearLayer(units=units, percent_on=1.0 if k is None else k / units, weight_density=density, dropout=dropout)


def _mnist(name: str, conv: tuple[ConvLayer, ...], hidden: LinearLayer) -> NetworkSpec:
    shape, classes = _shape("mnist")
    return NetworkSpec(shape, classes, conv=conv, linear=(hidden,), batch_norm=False, kwinners=MNIST_KW, name=name)


def _gsc(name: str, conv: tuple[ConvLayer, ...], hidden: LinearLayer) -> NetworkSpec:
    shape, classes = _shape("gsc")
    return NetworkSpec(shape, classes, conv=conv, linear=(hidden,), batch_norm=True, kwinners=GSC_KW, name=name)


def _mlp(dataset: str, sparse: bool) -> NetworkSpec:
    shape, classes = _shape(dataset)
    if sparse:
        layers = (_hidden(500, k=50, density=0.3), _hidden(500, k=50, density=0.3))
    else:
        layers = (_hidden(500), _hidden(500))
    name = f"{'sparse' if sparse else 'dense'}-mlp"
    kw = MNIST_KW if dataset == "mnist" else GSC_KW
    return NetworkSpec(shape, classes, linear=layers, batch_norm=dataset == "gsc", kwinners=kw, name=name)


# MNIST 28x28 -> conv5 -> 24x24 -> pool -> 12x12 -> conv5 -> 8x8 -> pool -> 4x4
_SPARSE_CONV2 = (_conv(32, k=400, n=32 * 12 * 12), _conv(64, k=300, n=64 * 4 * 4))
_DENSE_CONV2 = (_conv(30), _conv(30))

_MNIST: dict[str, Callable[[], NetworkSpec]] = {
    "dense-cnn1": lambda: _mnist("dense-cnn1", (_conv(30),), _hidden(1000)),
    "dense-cnn2": lambda: _mnist("dense-cnn2", _DENSE_CONV2, _hidden(1000)),
    "sparse-cnn1": lambda: _mnist("sparse-cnn1", (_conv(30, k=400, n=30 * 12 * 12),), _hidden(150, k=50, density=0.3)),
    "sparse-cnn2": lambda: _mnist("sparse-cnn2", _SPARSE_CONV2, _hidden(700, k=100, density=0.3)),
    "dense-cnn2-sp3": lambda: _mnist("dense-cnn2-sp3", _DENSE_CONV2, _hidden(700, k=100, density=0.3)),
    "sparse-cnn2-d3": lambda: _mnist("sparse-cnn2-d3", _SPARSE_CONV2, _hidden(1000)),
    "sparse-cnn2-w1": lambda: _mnist("sparse-cnn2-w1", _SPARSE_CONV2, _hidden(700, k=100)),
    "sparse-cnn2-dsw": lambda: _mnist("sparse-cnn2-dsw", _SPARSE_CONV2, _hidden(1000, density=0.3)),
    "dense-mlp": lambda: _mlp("mnist", sparse=False),
    "sparse-mlp": lambda: _mlp("mnist", sparse=True),
}

# GSC 32x32 -> conv5 -> 28x28 -> pool -> 14x14 -> conv5 -> 10x10 -> pool -> 5x5
_GSC_SPARSE_CONV2 = (_conv(64, k=1200, n=64 * 14 * 14), _conv(64, k=200, n=64 * 5 * 5))
_GSC: dict[str, Callable[[], NetworkSpec]] = {
    "dense-cnn2": lambda: _gsc("dense-cnn2", (_conv(64), _conv(64)), _hidden(1000)),
    "dense-cnn2-dropout": lambda: _gsc("dense-cnn2-dropout", (_conv(64), _conv(64)), _hidden(1000, dropout=0.5)),
    "sparse-cnn2": lambda: _gsc("sparse-cnn2", _GSC_SPARSE_CONV2, _hidden(1000, k=100, density=0.4)),
    "super-sparse-cnn2": lambda: _gsc("super-sparse-cnn2", _GSC_SPARSE_CONV2, _hidden(1500, k=100, density=0.1)),
    "dense-mlp": lambda: _mlp("gsc", sparse=False),
    "sparse-mlp": lambda: _mlp("gsc", sparse=True),
}

_PRESETS = {"mnist": _MNIST, "gsc": _GSC}


def preset_names(dataset: str = "mnist") -> list[str]:
    """Preset names available for ``dataset`` ("mnist" or "gsc")."""
    if dataset not in _PRESETS:
        raise ValueError(f"dataset={dataset!r}: unknown dataset; choose one of {sorted(_PRESETS)}")
    return sorted(_PRESETS[dataset])


def preset(name: str, dataset: str = "mnist") -> NetworkSpec:
    """The paper's network ``name`` for ``dataset``, e.g. ``preset("sparse-cnn2", "mnist")``."""
    names = preset_names(dataset)
    if name not in _PRESETS[dataset]:
        raise ValueError(f"preset={name!r}: unknown preset for dataset {dataset!r}; choose one of {names}")
    return _PRESETS[dataset][name]()
