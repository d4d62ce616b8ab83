"""sparsity: k-winners-take-all, sparse weights and the networks of "How Can We Be So Dense?".

Plain PyTorch: no Ray or MLflow here, so the library works alone in a notebook.

Two layers: the configs (`NetworkSpec`, `Recipe`, `DataConfig`, `NoiseConfig`, `ExperimentConfig`,
the presets and the dataset facts) import no torch, so a spec is validated in a fraction of a
second; the modules (`KWinners`, `SparseWeights`, `build_network`, training, noise curves) import
torch. Names load on first use, so ``import sparsity`` itself is light either way.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule that defines it
_NAMES = {
    # configs (no torch)
    "ConvLayer": ".network_spec",
    "LinearLayer": ".network_spec",
    "KWinnersSettings": ".network_spec",
    "LayerSummary": ".network_spec",
    "NetworkSpec": ".network_spec",
    "Recipe": ".recipe",
    "paper_recipe": ".recipe",
    "DataConfig": ".data.config",
    "NoiseConfig": ".experiment_config",
    "ExperimentConfig": ".experiment_config",
    "preset": ".presets",
    "preset_names": ".presets",
    "DATASETS": ".facts",
    "dataset_facts": ".facts",
    "noise_facts": ".facts",
    "UserError": ".errors",
    # modules (torch)
    "KWinners": ".kwinners",
    "KWinners2d": ".kwinners",
    "update_boost_strength": ".kwinners",
    "SparseWeights": ".sparse_weights",
    "SparseWeights2d": ".sparse_weights",
    "rezero_weights": ".sparse_weights",
    "sparse_weight_modules": ".sparse_weights",
    "SparseNet": ".network",
    "build_network": ".network",
    "derive_seed": ".seeding",
    "generator": ".seeding",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
