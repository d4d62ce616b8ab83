"""What every dataset gives the training loop and the noise protocols: tensors in memory.

A split keeps its ``raw`` signal (MNIST pixels in [0, 1]; GSC waveforms in [-1, 1]) because the
paper's noise is applied there, before features; ``inputs`` are the model-ready features of the
clean signal, computed once. Batches are cut by index: no per-sample Python in the training loop.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

__all__ = ["DataSplit", "Dataset", "data_root", "cache_root", "DatasetNotFoundError"]

DATA_ENV = "SPARSE_SWEEPS_DATA"
CACHE_ENV = "SPARSE_SWEEPS_CACHE"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or incomplete; the message names the folder and the fix."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else $SPARSE_SWEEPS_DATA, else ./data."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path("data")


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """A writable cache (extracted MNIST, GSC features): ``cache``, else $SPARSE_SWEEPS_CACHE,
    else ~/.cache/sparse-sweeps."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sparse-sweeps"


@dataclass(frozen=True)
class DataSplit:
    raw: Tensor  # the signal noise is applied to
    inputs: Tensor  # model inputs for the clean signal, (N, C, H, W)
    targets: Tensor  # int64 class indices, (N,)

    def __post_init__(self) -> None:
        if not (len(self.raw) == len(self.inputs) == len(self.targets)):
            raise ValueError(
                f"split lengths differ: raw {len(self.raw)}, inputs {len(self.inputs)}, targets {len(self.targets)}"
            )

    def __len__(self) -> int:
        return len(self.targets)

    def to(self, device: torch.device | str) -> "DataSplit":
        return DataSplit(self.raw.to(device), self.inputs.to(device), self.targets.to(device))

    def head(self, n: int) -> "DataSplit":
        """The first ``n`` samples (splits are stored in a seeded shuffled order)."""
        return DataSplit(self.raw[:n], self.inputs[:n], self.targets[:n])


@dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits plus the functions that turn raw signal into inputs.

    ``featurize(raw)`` maps a batch of raw signal to model inputs (it is how noisy inputs are
    made). ``augment(raw, generator)`` returns an augmented copy of training signal, or is None
    when the dataset has no training augmentation.
    """

    name: str
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    train: DataSplit
    validation: DataSplit
    test: DataSplit
    featurize: Callable[[Tensor], Tensor]
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> "Dataset":
        return dataclasses.replace(
            self, train=self.train.to(device), validation=self.validation.to(device), test=self.test.to(device)
        )
