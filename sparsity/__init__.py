"""sparsity: k-winners-take-all, sparse weights and the networks of "How Can We Be So Dense?".

Plain PyTorch: no Ray or MLflow here, so the library works alone in a notebook.
"""

from .kwinners import KWinners, KWinners2d, update_boost_strength
from .network import ConvLayer, KWinnersSettings, LayerSummary, LinearLayer, NetworkSpec, SparseNet, build_network
from .presets import preset, preset_names
from .seeding import derive_seed, generator
from .sparse_weights import SparseWeights, SparseWeights2d, rezero_weights, sparse_weight_modules

__all__ = [
    "KWinners",
    "KWinners2d",
    "update_boost_strength",
    "SparseWeights",
    "SparseWeights2d",
    "rezero_weights",
    "sparse_weight_modules",
    "ConvLayer",
    "LinearLayer",
    "KWinnersSettings",
    "LayerSummary",
    "NetworkSpec",
    "SparseNet",
    "build_network",
    "preset",
    "preset_names",
    "derive_seed",
    "generator",
]
