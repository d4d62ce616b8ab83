"""Datasets as in-memory tensors: MNIST and Google Speech Commands (see ``base`` for the interface)."""

from .base import Dataset, DatasetNotFoundError, DataSplit, cache_root, data_root
from .config import DataConfig, load_dataset
from .gsc import load_gsc
from .mnist import load_mnist

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
]
