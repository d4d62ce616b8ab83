"""MNIST from the official files, read offline from a (possibly read-only) data root.

The root holds ``MNIST/raw/`` with the four official ``.gz`` files (or their extracted copies).
Compressed files are copied into the writable cache and extracted there by torchvision, whose md5
check passes so nothing is downloaded. Validation is a seeded hold-out of the 60,000 training images.

The extracted IDX files are decoded here (the same bytes torchvision's ``MNIST`` reads, checked by
the tests), so loading an extracted copy does not import torchvision: that import pulls in
``torch._dynamo`` and costs about 3 s in every fresh process, every sweep worker included.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..facts import DATASETS
from ..seeding import generator
from .base import Dataset, DatasetNotFoundError, DataSplit, cache_lock, cache_root, data_root

__all__ = ["load_mnist", "locate_mnist", "mnist_featurize", "MNIST_MEAN", "MNIST_STD", "MNIST_TRAIN_SIZE"]

logger = logging.getLogger(__name__)

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
MNIST_TRAIN_SIZE = DATASETS["mnist"].train_size
_FILES = {  # split -> (images, labels), the official names (torchvision.datasets.MNIST.resources)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_EXTRACTED = tuple(name for pair in _FILES.values() for name in pair)
# IDX type codes (http://yann.lecun.com/exdb/mnist/): MNIST uses unsigned bytes only.
_IDX_UBYTE = 0x08


def _resources() -> tuple[tuple[str, str], ...]:
    """(compressed file name, md5) of the four official files, from torchvision."""
    import torchvision

    return tuple(torchvision.datasets.MNIST.resources)


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
    import torchvision
    from torchvision.datasets.utils import check_integrity

    resources = _resources()
    raw = source / "MNIST" / "raw"
    missing = [name for name, _ in resources if not (raw / name).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"MNIST not found in {raw}: missing {', '.join(missing)}. Copy the four official files "
            f"({', '.join(n for n, _ in resources)}) into that folder, or download them there with network "
            f"access: torchvision.datasets.MNIST({str(source)!r}, download=True). Set the data root with "
            "$SPARSE_SWEEPS_DATA or the `root` option."
        )
    corrupt = [name for name, md5 in resources if not check_integrity(str(raw / name), md5)]
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
        for name, _ in resources:
            shutil.copyfile(raw / name, tmp_raw / name)
        torchvision.datasets.MNIST(tmp, train=True, download=True)  # extracts all four, offline
        for name in _EXTRACTED:
            os.replace(tmp_raw / name, target / name)
    logger.info("extracted MNIST from %s into %s", raw, target)


def locate_mnist(root: Path, cache: Path) -> Path:
    """The folder holding the extracted files: the data root if already extracted, else the cache."""
    if _is_extracted(root):
        return root
    if not _is_extracted(cache):
        with cache_lock(cache / "MNIST.lock", "the extracted MNIST"):  # one process per node extracts
            if not _is_extracted(cache):
                _extract_into_cache(root, cache)
    return cache


def read_idx(path: Path) -> Tensor:
    """An IDX file of unsigned bytes as a uint8 tensor of its stored shape (images N x 28 x 28, labels N)."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise DatasetNotFoundError(f"{path} is not an MNIST IDX file of unsigned bytes; replace it with the official file")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) != header + int(np.prod(shape)):
        raise DatasetNotFoundError(f"{path} is truncated: shape {shape} needs {header + int(np.prod(shape))} bytes, "
                                   f"the file has {len(data)}; replace it with the official file")
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy())


def _read_split(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    images, labels = _FILES[split]
    raw = folder / "MNIST" / "raw"
    return read_idx(raw / images), read_idx(raw / labels)


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

    ``validation_size=0`` is the paper's protocol (its configuration's ``validation = 1.0``): all
    60,000 images train and the validation split is empty; the test set is for reporting only.

    Every split is stored in a seeded shuffled order, so ``train_limit`` (train) and ``eval_limit``
    (validation and test) keep the first ``n`` of it: a deterministic random subset.
    Raises DatasetNotFoundError when the files are in neither the data root nor the cache.
    """
    if not 0 <= validation_size < MNIST_TRAIN_SIZE:
        raise ValueError(f"validation_size={validation_size}: use 0 (no validation split) .. {MNIST_TRAIN_SIZE - 1}")
    for name, value in (("train_limit", train_limit), ("eval_limit", eval_limit)):
        if value is not None and value < 1:
            raise ValueError(f"{name}={value}: use None (everything) or a count >= 1")
    folder = locate_mnist(data_root(root), cache_root(cache_dir))
    train_images, train_targets = _read_split(folder, "train")
    test_images, test_targets = _read_split(folder, "test")

    order = torch.randperm(MNIST_TRAIN_SIZE, generator=generator(split_seed, "mnist", "validation"))
    validation_index, train_index = order[:validation_size], order[validation_size:]
    test_index = torch.randperm(len(test_targets), generator=generator(split_seed, "mnist", "test"))
    train_index = train_index[:train_limit]
    validation_index, test_index = validation_index[:eval_limit], test_index[:eval_limit]

    return Dataset(
        name="mnist",
        classes=DATASETS["mnist"].classes(),
        input_shape=DATASETS["mnist"].input_shape,
        train=_split(train_images, train_targets, train_index),
        validation=_split(train_images, train_targets, validation_index),
        test=_split(test_images, test_targets, test_index),
        featurize=mnist_featurize,
        augment=None,
    )
