"""Datasets as in-memory tensors: MNIST and Google Speech Commands (see ``base`` for the interface).

Names load on first use: ``from sparsity.data import DataConfig`` needs no torch; the loaders and
tensors (``Dataset``, ``load_mnist``, ...) import it when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DATASET_NAMES, DataConfig, load_dataset

_LAZY = {
    "DataSplit": ".base",
    "Dataset": ".base",
    "DatasetNotFoundError": ".base",
    "data_root": ".base",
    "cache_root": ".base",
    "load_mnist": ".mnist",
    "load_gsc": ".gsc",
}

__all__ = [
    "DataSplit",
    "Dataset",
    "DatasetNotFoundError",
    "data_root",
    "cache_root",
    "load_mnist",
    "load_gsc",
    "load_dataset",
    "DataConfig",
    "DATASET_NAMES",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
