"""``DataConfig``: which dataset to load and how, validated on construction; ``load_dataset``."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..configs import check_known_keys, field_names
from .base import Dataset
from .gsc import CLASS_SETS, load_gsc
from .mnist import MNIST_TRAIN_SIZE, load_mnist

__all__ = ["DataConfig", "load_dataset", "DATASET_NAMES"]

DATASET_NAMES = ("mnist", "gsc")


def _choices(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DataConfig:
    """A dataset choice. ``root`` None means $SPARSE_SWEEPS_DATA; ``cache_dir`` None means
    $SPARSE_SWEEPS_CACHE. ``class_set`` applies to GSC only, ``validation_size`` to MNIST only;
    ``train_limit`` / ``eval_limit`` keep the first n of the (seeded, shuffled) splits."""

    name: str
    root: str | None = None  # a PathLike is stored as str
    class_set: str = "keywords"
    validation_size: int = 5000
    split_seed: int = 0
    train_limit: int | None = None
    eval_limit: int | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.name not in DATASET_NAMES:
            raise ValueError(f"name={self.name!r}: unknown dataset; choose one of {_choices(DATASET_NAMES)}")
        for field in ("root", "cache_dir"):
            value = getattr(self, field)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, field, os.fspath(value))  # keep the config plain (YAML, hashing)
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{field}={value!r}: give a folder path as a string, or None for the default")
        if self.class_set not in CLASS_SETS:
            raise ValueError(f"class_set={self.class_set!r}: choose one of {_choices(CLASS_SETS)}")
        if not _is_int(self.validation_size) or not 1 <= self.validation_size < MNIST_TRAIN_SIZE:
            raise ValueError(f"validation_size={self.validation_size!r}: use an integer in 1 .. {MNIST_TRAIN_SIZE - 1}")
        if not _is_int(self.split_seed):
            raise ValueError(f"split_seed={self.split_seed!r}: use an integer")
        for field in ("train_limit", "eval_limit"):
            value = getattr(self, field)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{field}={value!r}: use None (the whole split) or an integer >= 1")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
        """Build from a mapping (e.g. YAML); unknown keys raise ValueError naming them."""
        check_known_keys("data", values, field_names(cls))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_dataset(config: DataConfig) -> Dataset:
    """Load the dataset ``config`` names."""
    common = dict(
        split_seed=config.split_seed,
        train_limit=config.train_limit,
        eval_limit=config.eval_limit,
        cache_dir=config.cache_dir,
    )
    if config.name == "mnist":
        return load_mnist(config.root, validation_size=config.validation_size, **common)
    if config.name == "gsc":
        return load_gsc(config.root, class_set=config.class_set, **common)
    raise ValueError(f"name={config.name!r}: unknown dataset; choose one of {_choices(DATASET_NAMES)}")
