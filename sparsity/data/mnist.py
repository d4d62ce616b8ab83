"""MNIST through ``torchvision.datasets.MNIST``, read offline from a (possibly read-only) data root.

The root holds ``MNIST/raw/`` with the four official ``.gz`` files (or their extracted copies).
Compressed files are copied into the writable cache and extracted there by torchvision, whose md5
check passes so nothing is downloaded. Validation is a seeded hold-out of the 60,000 training images.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torchvision.datasets.utils import check_integrity

from ..seeding import generator
from .base import Dataset, DatasetNotFoundError, DataSplit, cache_root, data_root

__all__ = ["load_mnist", "mnist_featurize", "MNIST_MEAN", "MNIST_STD", "MNIST_TRAIN_SIZE"]

logger = logging.getLogger(__name__)

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_TRAIN_SIZE = 60_000
_RESOURCES: tuple[tuple[str, str], ...] = tuple(torchvision.datasets.MNIST.resources)
_EXTRACTED = tuple(name.removesuffix(".gz") for name, _ in _RESOURCES)


def mnist_featurize(raw: Tensor) -> Tensor:
    """Pixels in [0, 1] -> the standard MNIST normalization ``(raw - 0.1307) / 0.3081``."""
    return (raw - MNIST_MEAN) / MNIST_STD


def _is_extracted(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / name).is_file() for name in _EXTRACTED)


def _extract_into_cache(source: Path, cache: Path) -> None:
    """Copy the .gz files from ``source/MNIST/raw`` and let torchvision extract them into ``cache``.

    Extraction happens in a private temporary folder and each file is moved in with ``os.replace``,
    so concurrent loaders (parallel trials) never read a half-written file.
    """
    raw = source / "MNIST" / "raw"
    missing = [name for name, _ in _RESOURCES if not (raw / name).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"MNIST not found in {raw}: missing {', '.join(missing)}. Copy the four official files "
            f"({', '.join(n for n, _ in _RESOURCES)}) into that folder, or download them there with network "
            f"access: torchvision.datasets.MNIST({str(source)!r}, download=True). Set the data root with "
            "$SPARSE_SWEEPS_DATA or the `root` option."
        )
    corrupt = [name for name, md5 in _RESOURCES if not check_integrity(str(raw / name), md5)]
    if corrupt:
        # torchvision would try to re-download these; fail clearly instead.
        raise DatasetNotFoundError(
            f"MNIST files in {raw} fail their md5 check: {', '.join(corrupt)}. Replace them with the official files."
        )
    target = cache / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".mnist-") as tmp:
        tmp_raw = Path(tmp) / "MNIST" / "raw"
        tmp_raw.mkdir(parents=True)
        for name, _ in _RESOURCES:
            shutil.copyfile(raw / name, tmp_raw / name)
        torchvision.datasets.MNIST(tmp, train=True, download=True)  # extracts all four, offline
        for name in _EXTRACTED:
            os.replace(tmp_raw / name, target / name)
    logger.info("extracted MNIST from %s into %s", raw, target)


def _locate(root: Path, cache: Path) -> Path:
    """The folder to hand torchvision: the data root if already extracted, else the cache."""
    if _is_extracted(root):
        return root
    if not _is_extracted(cache):
        _extract_into_cache(root, cache)
    return cache


def _split(images: Tensor, targets: Tensor, index: Tensor) -> DataSplit:
    raw = images.index_select(0, index).unsqueeze(1).float().div_(255.0)
    return DataSplit(raw, mnist_featurize(raw), targets.index_select(0, index).long())


def load_mnist(
    root: str | os.PathLike | None = None,
    *,
    validation_size: int = 5000,
    split_seed: int = 0,
    train_limit: int | None = None,
    eval_limit: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """MNIST: ``60,000 - validation_size`` train, ``validation_size`` validation, the official 10,000 test.

    Every split is stored in a seeded shuffled order, so ``train_limit`` (train) and ``eval_limit``
    (validation and test) keep the first ``n`` of it: a deterministic random subset.
    Raises DatasetNotFoundError when the files are in neither the data root nor the cache.
    """
    if not 1 <= validation_size < MNIST_TRAIN_SIZE:
        raise ValueError(f"validation_size={validation_size}: use 1 .. {MNIST_TRAIN_SIZE - 1}")
    for name, value in (("train_limit", train_limit), ("eval_limit", eval_limit)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value}: use None (everything) or a count >= 1")
    folder = _locate(data_root(root), cache_root(cache_dir))
    train_set = torchvision.datasets.MNIST(str(folder), train=True, download=False)
    test_set = torchvision.datasets.MNIST(str(folder), train=False, download=False)

    order = torch.randperm(MNIST_TRAIN_SIZE, generator=generator(split_seed, "mnist", "validation"))
    validation_index, train_index = order[:validation_size], order[validation_size:]
    test_index = torch.randperm(len(test_set.targets), generator=generator(split_seed, "mnist", "test"))
    train_index = train_index[:train_limit]
    validation_index, test_index = validation_index[:eval_limit], test_index[:eval_limit]

    return Dataset(
        name="mnist",
        classes=tuple(str(d) for d in range(10)),
        input_shape=(1, 28, 28),
        train=_split(train_set.data, train_set.targets, train_index),
        validation=_split(train_set.data, train_set.targets, validation_index),
        test=_split(test_set.data, test_set.targets, test_index),
        featurize=mnist_featurize,
        augment=None,
    )
