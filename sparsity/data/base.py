"""What every dataset gives the training loop and the noise protocols: tensors in memory.

A split keeps its ``raw`` signal (MNIST pixels in [0, 1]; GSC waveforms in [-1, 1]) because the
paper's noise is applied there, before features; ``inputs`` are the model-ready features of the
clean signal, computed once. Batches are cut by index: no per-sample Python in the training loop.
A raw signal may be stored as integers (GSC keeps its 16-bit PCM: half the memory of float32);
``DataSplit.signal(start, stop)`` gives any part of it as float. Training augmentation draws its
random numbers for the whole split, then runs (with featurization) a chunk of clips at a time,
so an epoch never holds more than one chunk's worth of augmented signal.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["DataSplit", "Dataset", "Augment", "data_root", "cache_root", "DatasetNotFoundError", "AUGMENT_CHUNK",
           "cache_lock"]

log = logging.getLogger(__name__)

DATA_ENV = "SPARSE_SWEEPS_DATA"
CACHE_ENV = "SPARSE_SWEEPS_CACHE"
AUGMENT_CHUNK = 1024  # clips augmented and featurized at once (GSC: under 1 GB of transient memory)


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


@contextmanager
def cache_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created beside a cache entry, kept after):
    of the processes on a node that miss the same cache entry, one builds it and the others wait
    here, then find it built. An advisory ``flock``, released when the holder exits or dies; on
    NFS, Linux maps it to a byte-range lock the server sees."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to build %s (lock %s)", what, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class DataSplit:
    raw: Tensor  # the signal noise is applied to, as float, or as integers (see ``signal``)
    inputs: Tensor  # model inputs for the clean signal, (N, C, H, W)
    targets: Tensor  # int64 class indices, (N,)
    raw_scale: float = 1.0  # integer ``raw``: the signal is raw / raw_scale (GSC int16 PCM: 32768)

    def __post_init__(self) -> None:
        if not (len(self.raw) == len(self.inputs) == len(self.targets)):
            raise ValueError(
                f"split lengths differ: raw {len(self.raw)}, inputs {len(self.inputs)}, targets {len(self.targets)}"
            )

    def __len__(self) -> int:
        return len(self.targets)

    def signal(self, start: int = 0, stop: int | None = None) -> Tensor:
        """Samples ``start:stop`` of the raw signal as float (integer storage divided by ``raw_scale``)."""
        part = self.raw[start:stop]
        return part if part.is_floating_point() else part.float() / self.raw_scale

    def to(self, device: torch.device | str) -> "DataSplit":
        return DataSplit(self.raw.to(device), self.inputs.to(device), self.targets.to(device), self.raw_scale)

    def head(self, n: int) -> "DataSplit":
        """The first ``n`` samples (splits are stored in a seeded shuffled order)."""
        return DataSplit(self.raw[:n], self.inputs[:n], self.targets[:n], self.raw_scale)


@runtime_checkable
class Augment(Protocol):
    """Training augmentation in two steps, so an epoch can run a chunk of samples at a time.

    ``draw(n, generator)`` draws every random number for ``n`` samples (O(n) scalars, never a
    copy of the signal) and returns an object sliceable by sample (``draws[lo:hi]``);
    ``apply(raw, draws)`` gives the augmented float signal of the float signal ``raw`` with its
    slice of the draws. Sample i's result depends only on its signal and its
    draws, so a chunked epoch equals an unchunked one. ``augment(raw, generator)`` does both.
    """

    def draw(self, n: int, generator: torch.Generator) -> Any: ...

    def apply(self, raw: Tensor, draws: Any) -> Tensor: ...

    def __call__(self, raw: Tensor, generator: torch.Generator) -> Tensor: ...


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
    augment: Augment | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def augmented_inputs(self, generator: torch.Generator, chunk: int = AUGMENT_CHUNK) -> Tensor:
        """Model inputs of one epoch's augmented training split, built ``chunk`` samples at a time:
        the random numbers of the whole split are drawn first (in one fixed order), then each
        chunk is augmented and featurized into a preallocated tensor on the split's device. Peak
        extra memory is the inputs plus one chunk's work, whatever the split's size."""
        if self.augment is None:
            return self.train.inputs
        if chunk < 1:
            raise ValueError(f"chunk={chunk!r}: must be >= 1")
        split, n = self.train, len(self.train)
        draws = self.augment.draw(n, generator)
        out = torch.empty((n, *self.train.inputs.shape[1:]), dtype=split.inputs.dtype, device=split.inputs.device)
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            out[lo:hi] = self.featurize(self.augment.apply(split.signal(lo, hi), draws[lo:hi]))
        return out

    def to(self, device: torch.device | str) -> "Dataset":
        return dataclasses.replace(
            self, train=self.train.to(device), validation=self.validation.to(device), test=self.test.to(device)
        )
